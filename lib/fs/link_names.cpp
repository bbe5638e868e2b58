#include "lib/fs/link_names.hpp"

#include <algorithm>

namespace rfs::fs {

void LinkNames::seen(SrcId file, NodeId parent, std::string_view name) {
    note(file, parent, name, true);
}

void LinkNames::moved(SrcId file, NodeId parent, std::string_view name) {
    note(file, parent, name, false);
}

void LinkNames::note(SrcId file, NodeId parent, std::string_view name, bool add) {
    std::lock_guard lock(mu_);
    auto it = names_.find(file);
    if (it == names_.end()) {
        if (!add) return;
        if (names_.size() >= kMaxFiles) {
            names_.erase(order_.front());
            order_.pop_front();
        }
        order_.push_back(file);
        it = names_.emplace(file, std::make_pair(Names{}, std::prev(order_.end()))).first;
    }
    Names& names = it->second.first;
    auto same = std::find_if(names.begin(), names.end(),
                             [&](const auto& n) { return n.first == parent && n.second == name; });
    if (same != names.end()) names.erase(same);
    names.insert(names.begin(), {parent, std::string(name)});
    if (names.size() > kMaxNames) names.pop_back();
}

std::vector<std::pair<NodeId, std::string>> LinkNames::names_of(SrcId file) const {
    std::lock_guard lock(mu_);
    auto it = names_.find(file);
    return it == names_.end() ? Names{} : it->second.first;
}

} // namespace rfs::fs
