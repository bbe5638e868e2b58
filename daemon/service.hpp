// What riakfs does for its operator beside serving the mount: the metrics endpoint (-o metrics=),
// the settings re-read at SIGHUP (-o settings=), systemd's readiness and status lines, and the
// journal. main.cpp makes one Service before mounting and hands it the pieces as they exist.
//
// Order (see main.cpp): prepare() before mounting (a bad metrics= address or settings file is
// refused in one line, nothing mounted); attach_journal() once the daemon runs; serving() once
// the kernel's INIT has been answered (the mount answers: READY=1); start_metrics() once the
// engine exists, its endpoint destroyed before the engine is; watch_signals() on loop 0.
#pragma once

#include "daemon/metrics_page.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/runtime_settings.hpp"
#include "lib/io/executor.hpp"
#include "lib/metrics/http_endpoint.hpp"

#include <boost/asio/signal_set.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace rfs {

namespace migrate {
class Drain;
}

class Service {
public:
    // Before mounting, before the fork: binds metrics= (port 0 picks a free one) and reads
    // settings= (applying its log level unless -d asked for debug, and putting its drain limits
    // into cl.options, where they replace -o drain_rate=/drain_files=). One line on error.
    static std::variant<std::unique_ptr<Service>, std::string> prepare(CommandLine& cl);

    // Once the daemon runs (after the fork): log events go to the journal when stderr is the
    // service's journal stream.
    void attach_journal();
    // The mount answers (the kernel's INIT was answered): READY=1 and a STATUS= line.
    void serving(const std::string& status);

    // Serves GET /metrics from its own thread until the returned endpoint is destroyed (null
    // without metrics=). Logs the address it listens on (with the port port 0 picked).
    std::unique_ptr<metrics::HttpEndpoint> start_metrics(MetricsSources sources);

    // SIGTERM/SIGINT: STOPPING=1, then `on_stop(signo)`. SIGHUP: reload() on the blocking pool
    // (it reads a file), then waits for the next signal. `signals` must hold all three.
    void watch_signals(boost::asio::signal_set& signals, io::Executor& executor,
                       std::function<void(int signo)> on_stop);

    // Re-reads settings=: a new log level applies at once; drain_rate and drain_files, when the
    // file has them, become the running drain's limits (as `riakfsctl drain --rate/--files`
    // would make them: the last change wins). A bad file changes nothing (one error line). Any
    // thread; reloads run one at a time.
    void reload();

    // Reloads apply their drain limits to `drain` while the returned registration lives (the
    // hook the drain's rate takes at a reload). Declare it after the drain, so it goes first.
    class DrainConnection {
    public:
        DrainConnection() = default;
        explicit DrainConnection(Service* service) : service_(service) {}
        DrainConnection(DrainConnection&& other) noexcept
            : service_(std::exchange(other.service_, nullptr)) {}
        DrainConnection& operator=(DrainConnection&& other) noexcept;
        ~DrainConnection();

    private:
        Service* service_ = nullptr;
    };
    [[nodiscard]] DrainConnection connect_drain(migrate::Drain& drain);

private:
    void apply(const RuntimeSettings& settings, bool at_start);
    void apply_drain_limits(const RuntimeSettings& settings); // reload_mu_ held

    std::string settings_file_; // absolute ("" = none)
    std::optional<metrics::BoundListener> metrics_listener_;
    std::mutex reload_mu_; // reload(), drain_
    migrate::Drain* drain_ = nullptr;
    bool debug_flag_ = false; // -d: debug at start whatever the file says
};

} // namespace rfs
