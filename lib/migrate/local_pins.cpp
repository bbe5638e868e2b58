#include "lib/migrate/local_pins.hpp"

#include <mutex>

namespace rfs::migrate {

namespace {

std::optional<PinKind> parse_kind(std::string_view text) {
    if (text == "keep") return PinKind::keep;
    if (text == "local_only") return PinKind::local_only;
    return std::nullopt;
}

} // namespace

std::string_view to_string(PinKind kind) {
    return kind == PinKind::keep ? "keep" : "local_only";
}

state::Result<std::unique_ptr<LocalPins>> LocalPins::load(state::StateStore& state) {
    std::unique_ptr<LocalPins> pins(new LocalPins(state));
    auto scanned = state.aux_for_each(
        state::AuxKind::local_pin, "", [&](std::string_view key, std::string_view value) {
            // An unknown kind (a newer riakfs) is the stronger one.
            pins->pins_[std::string(key)] = parse_kind(value).value_or(PinKind::local_only);
            return true;
        });
    if (!scanned) return scanned.error();
    pins->any_ = !pins->pins_.empty();
    return pins;
}

state::Result<void> LocalPins::pin(const std::string& rel_path, PinKind kind) {
    std::unique_lock lock(mu_);
    auto it = pins_.find(rel_path);
    if (it != pins_.end() && (it->second == PinKind::local_only || it->second == kind)) return {};
    if (auto put = state_.aux_put(state::AuxKind::local_pin, rel_path, to_string(kind)); !put)
        return put;
    pins_[rel_path] = kind;
    any_ = true;
    return {};
}

std::optional<PinKind> LocalPins::covers(std::string_view rel_path) const {
    if (!any_.load(std::memory_order_relaxed)) return std::nullopt;
    std::shared_lock lock(mu_);
    std::optional<PinKind> found;
    auto consider = [&](std::string_view prefix) {
        auto it = pins_.find(std::string(prefix));
        if (it == pins_.end()) return;
        if (!found || it->second == PinKind::local_only) found = it->second;
    };
    consider("");
    for (std::size_t slash = rel_path.find('/'); slash != std::string_view::npos;
         slash = rel_path.find('/', slash + 1))
        consider(rel_path.substr(0, slash));
    if (!rel_path.empty()) consider(rel_path);
    return found;
}

} // namespace rfs::migrate
