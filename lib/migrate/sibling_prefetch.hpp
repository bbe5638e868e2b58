// Which files of a directory to fetch ahead when an application reads its files one by one.
//
// A backup, an indexer or `cat dir/*` opens a directory's files one after another, in name order
// or in the order the directory lists them. In the Riak modes each open of a small file then
// waits for its own GET: the fetch at its LOOKUP (lookup_prefetch.hpp) overlaps only the OPEN's
// round trip, and nothing overlaps one file's GET with the next one's. Once two opens in a row
// are neighbours in one of those orders, the next kAhead files in that order are fetched at once
// (the GETs pipelined on one connection), and each further open in that order fetches one more,
// so that the reader finds the files cached when it gets to them (when the last two opens are
// neighbours in both orders, the order of the longer run of such opens is followed). The first
// open out of order stops it (at most kAhead fetches were for nothing). Only opens for reading
// count: a scan that looks files up or stats them (ls -l, find) never starts it.
//
// This class decides; the caller lists directories (a function it passes) and fetches what it is
// told (MigrateObserver: only small files whose record says Riak holds them). Any thread; the
// lock is never held across a listing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rfs::migrate {

class SiblingPrefetch {
public:
    static constexpr unsigned kAhead = 8;
    // Directories followed at once (the least recently opened in is forgotten).
    static constexpr unsigned kDirs = 4;
    // A listing that misses the file just opened (created since) is made again, at most this often.
    static constexpr std::chrono::seconds kRelist{1};

    // The names in `dir` (relative to SOURCE, "" for SOURCE itself) in the order the directory
    // lists them; nullopt when it cannot be listed (or is too large to be worth it).
    using List = std::function<std::optional<std::vector<std::string>>(const std::string& dir)>;

    explicit SiblingPrefetch(List list) : list_(std::move(list)) {}

    // `path` (relative to SOURCE) was opened for reading: the paths to fetch now, in the order
    // the reader is expected to open them (none when it is not reading in order).
    std::vector<std::string> opened(const std::string& path);
    // The same without listing: nullopt (and nothing noted) when `path`'s directory would have
    // to be listed first. Quick enough to be called while the open is being answered, so that
    // opens are noted in the order they came, whichever FUSE loop took them (calls made after
    // the replies, on two loops, can run out of that order and break the reader's run).
    std::optional<std::vector<std::string>> opened_if_listed(const std::string& path);

private:
    enum Order { listed, sorted, kOrders };
    // One directory's listing, kept compact (a name once, positions as indices): 20,000 names
    // of 12 bytes take about 2 MiB.
    struct Dir {
        std::vector<std::string> names;                            // as the directory lists them
        std::vector<std::uint32_t> by_name;                        // indices into names, sorted
        std::vector<std::uint32_t> rank;                           // names[i] is by_name[rank[i]]
        std::unordered_map<std::string_view, std::uint32_t> index; // name -> its index in names
        std::chrono::steady_clock::time_point listed_at;
        std::optional<std::string> last;        // the name opened before
        std::uint32_t fetched_to[kOrders] = {}; // fetched up to (excluded) in each order
        // Opens in a row that were each the next in that order: when both orders have the last
        // open next (two names can be neighbours in both by chance), the longer run is the
        // reader's order.
        std::uint32_t run[kOrders] = {};

        std::uint32_t position(Order o, std::uint32_t i) const { return o == listed ? i : rank[i]; }
        const std::string& at(Order o, std::uint32_t p) const {
            return o == listed ? names[p] : names[by_name[p]];
        }
    };
    static void index(Dir& d, std::vector<std::string> names);
    std::optional<std::vector<std::string>> note_open(const std::string& path, bool may_list);

    List list_;
    std::mutex mu_;
    std::list<std::pair<std::string, Dir>> dirs_; // most recently opened in first
};

} // namespace rfs::migrate
