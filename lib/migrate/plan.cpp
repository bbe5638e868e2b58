#include "lib/migrate/plan.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/migrate/riak_reader.hpp"
#include "lib/state/placeholder.hpp"

#include <fcntl.h>

namespace rfs::migrate {

int plan_tree(int source_root, const std::string& rel, const layout::Mapper& mapper,
              const state::StateStore* state, const WalkOptions& options, PlanReport* report,
              const std::function<bool(const PlanReport&)>& progress) {
    PlanReport& r = *report;
    std::uint64_t seen = 0;
    auto add = [](PlanTally& t, std::uint64_t bytes) {
        ++t.files;
        t.bytes += bytes;
    };
    return walk_tree(
        source_root, rel, options,
        [&](const WalkEntry& e) {
            if (e.is_dir) {
                if (!e.path.empty() || rel.empty()) ++r.directories;
                return true;
            }
            if (!S_ISREG(e.st.st_mode)) return true;
            const auto size = static_cast<std::uint64_t>(e.st.st_size);
            if (!mapper.map(e.path)) {
                add(r.unmapped, size);
                return true;
            }
            add(r.mapped, size);
            bool released = false, copied = false;
            // The marker decides, as in the daemon; a file without one may have a verified
            // record that still describes it.
            if (size > 0) {
                UniqueFd fd(open_file_beneath(source_root, e.path, O_RDONLY));
                if (fd) {
                    auto marker = state::read_marker(fd.get());
                    released = marker && *marker;
                }
            }
            if (!released && state) {
                auto rec = state->get(e.path);
                copied = rec && *rec && record_matches(**rec, e.st);
            }
            if (released) {
                add(r.released, size);
                add(r.in_riak, size);
            } else {
                if (copied)
                    add(r.in_riak, size);
                else
                    add(r.to_send, size);
                if (e.st.st_nlink > 1)
                    add(r.kept_whole, size);
                else if (size > 0)
                    r.freeable_bytes += static_cast<std::uint64_t>(e.st.st_blocks) * 512;
            }
            if (++seen % 256 == 0 && progress && !progress(r)) return false;
            return true;
        },
        [&](const std::string&, int) { ++r.walk_errors; });
}

} // namespace rfs::migrate
