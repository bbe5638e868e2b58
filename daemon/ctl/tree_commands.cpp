#include "daemon/ctl/tree_commands.hpp"

#include "daemon/ctl/connection.hpp"
#include "daemon/ctl/status_view.hpp"
#include "lib/common/unique_fd.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/migrate/plan.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace rfs::ctl {

using json = nlohmann::json;

namespace {

std::uint64_t num(const json& object, const char* name) {
    auto it = object.find(name);
    return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

// A one-line progress display on stderr, drawn only when stderr is a terminal; result lines on
// stdout erase it first so they never mix.
class ProgressLine {
public:
    ProgressLine() : tty_(::isatty(STDERR_FILENO) != 0) {}
    ~ProgressLine() { clear(); }
    void show(const std::string& text) {
        if (!tty_) return;
        std::fprintf(stderr, "\r\x1b[K%s", text.c_str());
        std::fflush(stderr);
        shown_ = true;
    }
    void clear() {
        if (!shown_) return;
        std::fputs("\r\x1b[K", stderr);
        std::fflush(stderr);
        shown_ = false;
    }
    static int width() {
        winsize ws{};
        if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 40) return ws.ws_col;
        return 80;
    }

private:
    bool tty_;
    bool shown_ = false;
};

std::string shown_path(const std::string& rel) {
    return rel.empty() ? std::string(".") : rel;
}

} // namespace

std::string path_in_mount(const std::string& mountpoint, const std::string& path) {
    std::string rest = path;
    if (!path.empty() && path[0] == '/') {
        if (path == mountpoint) return {};
        if (!path.starts_with(mountpoint + "/"))
            usage_error("PATH '" + path + "' is not under the mount " + mountpoint);
        rest = path.substr(mountpoint.size() + 1);
    }
    std::string out;
    std::stringstream parts(rest);
    std::string part;
    while (std::getline(parts, part, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") usage_error("PATH '" + path + "' must not contain '..'");
        out += (out.empty() ? "" : "/") + part;
    }
    return out;
}

int verify_command(const VerifyArgs& a) {
    ProgressLine progress;
    const bool json_out = a.as_json;
    json request = {{"cmd", "verify"}, {"path", a.path}, {"repair", a.repair}};
    json answer = ask_stream(a.given, a.socket, request, [&](const json& e) {
        const std::string event = e.value("event", "");
        if (event == "progress") {
            const json& p = e["progress"];
            if (p.value("walking", false)) {
                progress.show("verify: counting... " + std::to_string(num(p, "files")) +
                              " files, " + format_bytes(static_cast<double>(num(p, "bytes"))));
                return;
            }
            const double total = static_cast<double>(num(p, "bytes"));
            const double done = static_cast<double>(num(p, "checked_bytes"));
            const double fraction = total > 0 ? done / total : (num(p, "files") ? 0 : 1);
            progress.show(progress_bar(fraction, 22) + " " +
                          std::to_string(num(p, "checked_files")) + "/" +
                          std::to_string(num(p, "files")) + " files, " + format_bytes(done) +
                          " of " + format_bytes(total) + ", " +
                          std::to_string(num(p, "mismatches") + num(p, "pending")) + " differ, " +
                          std::to_string(num(p, "errors")) + " errors");
        } else if (event == "finding") {
            progress.clear();
            if (json_out) {
                json line = e;
                line.erase("event");
                std::printf("%s\n", line.dump().c_str());
            } else {
                std::string repair = e.value("repair", "");
                std::printf("%-8s %s: %s%s\n", e.value("kind", "?").c_str(),
                            shown_path(e.value("path", "")).c_str(), e.value("what", "").c_str(),
                            repair.empty() ? "" : (" [" + repair + "]").c_str());
            }
            std::fflush(stdout);
        }
    });
    progress.clear();
    const json& c = answer["verify"];
    const auto differ = num(c, "mismatches") + num(c, "pending");
    const auto errors = num(c, "errors");
    if (json_out) {
        std::printf("%s\n", json{{"summary", c}}.dump().c_str());
    } else {
        std::printf("verified %llu files (%s, %llu released) in %llu directories under %s: ",
                    static_cast<unsigned long long>(num(c, "checked_files")),
                    format_bytes(static_cast<double>(num(c, "checked_bytes"))).c_str(),
                    static_cast<unsigned long long>(num(c, "released")),
                    static_cast<unsigned long long>(num(c, "directories")),
                    shown_path(a.path).c_str());
        if (differ == 0 && errors == 0)
            std::printf("all agree with Riak\n");
        else
            std::printf(
                "%llu mismatch(es), %llu pending, %llu error(s)%s\n",
                static_cast<unsigned long long>(num(c, "mismatches")),
                static_cast<unsigned long long>(num(c, "pending")),
                static_cast<unsigned long long>(errors),
                a.repair ? (", " + std::to_string(num(c, "repairs")) + " repair(s) queued").c_str()
                         : "");
    }
    if (errors > 0) return 2;
    return differ > 0 ? 1 : 0;
}

int recall_command(const RecallArgs& a) {
    ProgressLine progress;
    json request = {{"cmd", "recall"}, {"path", a.path}, {"delete_from_riak", a.delete_from_riak}};
    json answer = ask_stream(a.given, a.socket, request, [&](const json& e) {
        const std::string event = e.value("event", "");
        if (event == "progress") {
            const json& p = e["progress"];
            if (p.value("deleting", false)) {
                progress.show("recall: deleting the Riak copies, " +
                              std::to_string(num(p, "removals_left")) + " left");
                return;
            }
            const double total = static_cast<double>(num(p, "released"));
            const double done = static_cast<double>(num(p, "recalled"));
            progress.show(progress_bar(total > 0 ? done / total : 0, 22) + " " +
                          std::to_string(num(p, "recalled")) + "/" +
                          std::to_string(num(p, "released")) + " released files back, " +
                          format_bytes(static_cast<double>(num(p, "recalled_bytes"))));
        } else if (event == "failure") {
            progress.clear();
            std::fprintf(stderr, "riakfsctl: cannot recall %s: %s\n",
                         shown_path(e.value("path", "")).c_str(), e.value("why", "").c_str());
        }
    });
    progress.clear();
    const json& c = answer["recall"];
    std::printf("recalled %llu file(s) (%s) of %llu released under %s; %llu file(s) there, all "
                "kept local from now on",
                static_cast<unsigned long long>(num(c, "recalled")),
                format_bytes(static_cast<double>(num(c, "recalled_bytes"))).c_str(),
                static_cast<unsigned long long>(num(c, "released")), shown_path(a.path).c_str(),
                static_cast<unsigned long long>(num(c, "files")));
    if (a.delete_from_riak && num(c, "failed") == 0)
        std::printf("; %llu Riak cop%s deleted",
                    static_cast<unsigned long long>(num(c, "riak_objects")),
                    num(c, "riak_objects") == 1 ? "y" : "ies");
    std::printf("\n");
    if (num(c, "failed") > 0) {
        std::fprintf(stderr,
                     "riakfsctl: %llu file(s) could not be brought back (named above)%s; run "
                     "recall again\n",
                     static_cast<unsigned long long>(num(c, "failed")),
                     a.delete_from_riak ? ", so no Riak copy was deleted" : "");
        return 1;
    }
    return 0;
}

namespace {

json plan_of_source(const PlanArgs& a) {
    std::optional<layout::Mapper> mapper;
    if (!a.config.empty()) {
        std::ifstream in(a.config, std::ios::binary);
        if (!in) die("--config " + a.config + ": " + std::strerror(errno));
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto parsed = layout::Mapper::from_json(text);
        if (!parsed) die("--config " + a.config + ": " + parsed.error().message);
        mapper.emplace(std::move(*parsed));
    } else {
        mapper.emplace(
            layout::Mapper::default_layout(a.bucket.empty() ? "riakfs" : a.bucket, a.bucket_type));
    }
    UniqueFd root(::open(a.given.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) die("cannot use SOURCE '" + a.given + "': " + std::strerror(errno));
    ProgressLine progress;
    migrate::PlanReport r;
    int err = migrate::plan_tree(
        root.get(), "", *mapper, nullptr, {}, &r, [&](const migrate::PlanReport& now) {
            progress.show("plan: " + std::to_string(now.mapped.files) + " files, " +
                          format_bytes(double(now.mapped.bytes)));
            return true;
        });
    progress.clear();
    if (err != 0) die("cannot walk SOURCE '" + a.given + "': " + std::strerror(err));
    auto tally = [](const migrate::PlanTally& t) {
        return json{{"files", t.files}, {"bytes", t.bytes}};
    };
    return {{"mapped", tally(r.mapped)},          {"unmapped", tally(r.unmapped)},
            {"in_riak", tally(r.in_riak)},        {"released", tally(r.released)},
            {"to_send", tally(r.to_send)},        {"kept_whole", tally(r.kept_whole)},
            {"freeable_bytes", r.freeable_bytes}, {"directories", r.directories},
            {"walk_errors", r.walk_errors}};
}

} // namespace

int plan_command(const PlanArgs& a) {
    json plan;
    std::string rate_source;
    std::optional<double> rate;
    if (a.socket.empty()) {
        plan = plan_of_source(a);
        plan["source"] = a.given;
    } else {
        ProgressLine progress;
        plan = ask_stream(a.given, a.socket, {{"cmd", "plan"}, {"path", ""}}, [&](const json& e) {
            if (e.value("event", "") != "progress") return;
            const json& p = e["progress"];
            progress.show("plan: " + std::to_string(num(p["mapped"], "files")) + " files, " +
                          format_bytes(static_cast<double>(num(p["mapped"], "bytes"))));
        })["plan"];
        progress.clear();
        plan["mountpoint"] = a.given;
        const json& rates = plan["rates"];
        if (rates.value("bytes_per_second", 0.0) > 0) {
            rate = rates.value("bytes_per_second", 0.0);
            rate_source = "the current copy rate";
        } else if (num(rates, "limit_bytes_per_second") > 0) {
            rate = static_cast<double>(num(rates, "limit_bytes_per_second"));
            rate_source = "the drain's rate limit";
        }
    }
    if (a.rate) {
        rate = static_cast<double>(*a.rate);
        rate_source = "--rate";
    }
    const double to_send = static_cast<double>(num(plan["to_send"], "bytes"));
    json eta = nullptr;
    if (to_send == 0)
        eta = 0;
    else if (rate && *rate > 0)
        eta = std::ceil(to_send / *rate);
    plan["rate_bytes_per_second"] = rate ? json(*rate) : json(nullptr);
    plan["eta_seconds"] = eta;
    if (a.as_json) {
        std::printf("%s\n", plan.dump(2).c_str());
        return 0;
    }
    auto files_bytes = [&](const char* name) {
        return std::to_string(num(plan[name], "files")) + " files, " +
               format_bytes(static_cast<double>(num(plan[name], "bytes")));
    };
    std::printf("plan        %s%s\n", a.given.c_str(),
                a.socket.empty() ? " (SOURCE, not mounted: only markers show what Riak holds)"
                                 : (" (mode " + plan.value("mode", "?") + ")").c_str());
    std::printf("mapped      %s\n", files_bytes("mapped").c_str());
    std::printf("stay local  %s (no rule maps them)\n", files_bytes("unmapped").c_str());
    std::printf("in Riak     %s (released: %s)\n", files_bytes("in_riak").c_str(),
                files_bytes("released").c_str());
    std::printf("to send     %s\n", files_bytes("to_send").c_str());
    std::printf("move frees  %s of local space%s\n",
                format_bytes(static_cast<double>(num(plan, "freeable_bytes"))).c_str(),
                num(plan["kept_whole"], "files") > 0
                    ? (" (" + std::to_string(num(plan["kept_whole"], "files")) +
                       " hard-linked files are never released)")
                          .c_str()
                    : "");
    if (eta.is_number())
        std::printf("time        %s%s\n", format_duration(eta.get<double>()).c_str(),
                    rate ? (" at " + format_bytes(*rate) + "/s (" + rate_source + ")").c_str()
                         : "");
    else
        std::printf("time        unknown: nothing is being copied now; give --rate SIZE\n");
    return 0;
}

} // namespace rfs::ctl
