// Where a file goes in Riak: its path relative to SOURCE -> bucket type, bucket and key.
//
// A layout is an ordered list of rules; the first rule whose path pattern matches wins, and a
// path that no rule matches stays local. The configuration file is JSON:
//
//   {"rules": [
//      {"path": "/{m}/images/{f}", "bucket": "IMG_{m}", "key": "{f}"},
//      {"path": "/logs/{rest**}",  "bucket": "logs",    "key": "{rest}", "type": "mytype"}],
//    "namespace": {"bucket": "riakfs-ns", "type": ""}}
//
// Path patterns start with '/' and are split into components at '/'. In a component:
//   * literal text matches itself byte for byte;
//   * {name} matches a non-empty run of bytes without '/'; a component holds at most one
//     capture, with optional literal text before and after it (`img_{f}.jpg`);
//   * {name**} must be the whole last component and matches one or more non-empty components,
//     slashes included ("a/b/c").
// Names are [A-Za-z_][A-Za-z0-9_]*, unique within a pattern. Braces cannot appear literally.
// Bucket and key templates are literal text and {name} references to the pattern's captures;
// `type` (optional, "" or "default" = the default bucket type) is a fixed name, as is the
// namespace bucket (where directory records live; default "riakfs-ns" in the default type).
//
// Paths are matched as given: pass them normalised (no leading, trailing or doubled '/'). An
// empty component never matches a capture, so "a//b" and "" match only literal patterns.
//
// The expanded bucket and key are raw bytes (file names need not be UTF-8), as the object store
// (lib/store) takes them: it escapes them into Riak names (proto::escape_name(): valid UTF-8,
// '%' sent as "%25"), so a file "dir/50%" is Riak key "dir/50%25". Keys under
// ".riakfs/" are reserved for chunk objects (manifest.hpp): a path mapping there stays local.
// A location may still be too long for a request line; the request builders report that.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"
#include "proto/riak_paths.hpp"

namespace rfs::layout {

using proto::Result;

// Bucket type ("" = default), bucket and key: raw bytes, escaped by the object store.
using Location = proto::ObjectId;

inline constexpr std::string_view kReservedKeyPrefix = ".riakfs/";
inline constexpr std::string_view kDefaultNamespaceBucket = "riakfs-ns";

class Mapper {
public:
    // Parses a configuration file's content. EINVAL with one line naming the rule and problem.
    static Result<Mapper> from_json(std::string_view text);
    // Every path -> `bucket` (in `type`), key = the path itself.
    static Mapper default_layout(std::string bucket = "riakfs", std::string type = "");

    // `rel_path` is relative to SOURCE without a leading '/' ("dir/a.txt"). nullopt: stays local.
    std::optional<Location> map(std::string_view rel_path) const;

    // Paths for which `excluded` answers true stay local whatever the rules say (riakfsctl recall
    // --delete-from-riak: lib/migrate/local_pins.hpp). Set before the mapper is shared; the
    // predicate must be callable from any thread.
    void set_exclusion(std::function<bool(std::string_view rel_path)> excluded) {
        excluded_ = std::move(excluded);
    }

    // Where the directory records (dir_record.hpp) live.
    const proto::BucketId& namespace_bucket() const { return namespace_; }

    struct Piece {
        bool capture = false;
        std::string text; // literal bytes, or the capture's name
    };
    struct Component {
        std::string prefix;  // literal before the capture (the whole component if no capture)
        std::string capture; // "" = a literal component
        bool rest = false;   // {name**}: one or more whole components
        std::string suffix;
    };
    struct Rule {
        std::vector<Component> path;
        std::string type;
        std::vector<Piece> bucket;
        std::vector<Piece> key;
    };

private:
    std::vector<Rule> rules_;
    std::function<bool(std::string_view)> excluded_;
    proto::BucketId namespace_{"", std::string(kDefaultNamespaceBucket)};
};

} // namespace rfs::layout
