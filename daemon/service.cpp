#include "daemon/service.hpp"

#include "daemon/fuse_metrics.hpp"
#include "daemon/systemd.hpp"
#include "lib/common/log.hpp"
#include "lib/migrate/drain.hpp"

#include <csignal>
#include <filesystem>

namespace rfs {

std::variant<std::unique_ptr<Service>, std::string> Service::prepare(CommandLine& cl) {
    auto service = std::make_unique<Service>();
    service->debug_flag_ = cl.debug;
    if (!cl.options.settings_file.empty()) {
        // Absolute: the daemon leaves its working directory before any reload.
        std::error_code ec;
        auto path = std::filesystem::absolute(cl.options.settings_file, ec);
        service->settings_file_ = ec ? cl.options.settings_file : path.string();
        auto settings = read_runtime_settings(service->settings_file_);
        if (auto* error = std::get_if<std::string>(&settings)) return *error;
        const auto& values = std::get<RuntimeSettings>(settings);
        service->apply(values, true);
        // The drain starts with the file's limits (it does not exist yet).
        if (values.drain_bytes_per_second)
            cl.options.drain_bytes_per_second = *values.drain_bytes_per_second;
        if (values.drain_files_per_second)
            cl.options.drain_files_per_second = *values.drain_files_per_second;
    }
    if (!cl.options.metrics.empty()) {
        auto address = metrics::parse_listen_address(cl.options.metrics);
        if (auto* error = std::get_if<std::string>(&address)) return "metrics=" + *error;
        auto bound = metrics::bind_listener(std::get<metrics::ListenAddress>(address));
        if (auto* error = std::get_if<std::string>(&bound)) return *error;
        service->metrics_listener_ = std::move(std::get<metrics::BoundListener>(bound));
        // Requests are timed from now on (nothing is served yet).
        fuse_metrics::enable();
    }
    return service;
}

void Service::attach_journal() {
    systemd::log_to_journal_if_attached();
}

void Service::serving(const std::string& status) {
    systemd::notify_ready(status);
}

std::unique_ptr<metrics::HttpEndpoint> Service::start_metrics(MetricsSources sources) {
    if (!metrics_listener_) return nullptr;
    const metrics::ListenAddress address = metrics_listener_->address;
    if (!address.loopback)
        RFS_LOG_EVENT(log::Level::warning,
                      "the metrics endpoint listens beyond loopback: anyone who reaches it reads "
                      "the mount's activity",
                      {"address", address.text()});
    auto endpoint = std::make_unique<metrics::HttpEndpoint>(
        std::move(*metrics_listener_),
        [sources = std::move(sources)] { return render_metrics(sources); });
    metrics_listener_.reset();
    RFS_LOG_EVENT(log::Level::info, "metrics endpoint listening", {"address", address.text()},
                  {"url", "http://" + address.text() + "/metrics"});
    return endpoint;
}

void Service::watch_signals(boost::asio::signal_set& signals, io::Executor& executor,
                            std::function<void(int)> on_stop) {
    signals.async_wait([this, &signals, &executor, on_stop = std::move(on_stop)](
                           const boost::system::error_code& ec, int signo) mutable {
        if (ec) return;
        if (signo == SIGHUP) {
            executor.run_blocking([this] { reload(); });
            return watch_signals(signals, executor, std::move(on_stop));
        }
        systemd::notify_stopping("unmounting; copies in flight get a few seconds to finish");
        on_stop(signo);
    });
}

void Service::reload() {
    std::lock_guard lock(reload_mu_);
    systemd::notify_reloading();
    if (settings_file_.empty()) {
        RFS_LOG_EVENT(log::Level::info, "reload: no settings file (settings=), nothing to change");
        systemd::notify_reloaded("serving");
        return;
    }
    auto settings = read_runtime_settings(settings_file_);
    if (auto* error = std::get_if<std::string>(&settings)) {
        RFS_LOG_EVENT(log::Level::error, "reload: settings not changed", {"reason", *error});
        systemd::notify_reloaded("serving; the last reload failed: " + *error);
        return;
    }
    apply(std::get<RuntimeSettings>(settings), false);
    systemd::notify_reloaded("serving; settings reloaded");
}

Service::DrainConnection Service::connect_drain(migrate::Drain& drain) {
    std::lock_guard lock(reload_mu_);
    drain_ = &drain;
    return DrainConnection(this);
}

Service::DrainConnection& Service::DrainConnection::operator=(DrainConnection&& other) noexcept {
    if (this != &other) {
        DrainConnection gone(std::move(*this));
        service_ = std::exchange(other.service_, nullptr);
    }
    return *this;
}

Service::DrainConnection::~DrainConnection() {
    if (!service_) return;
    std::lock_guard lock(service_->reload_mu_);
    service_->drain_ = nullptr;
}

void Service::apply_drain_limits(const RuntimeSettings& settings) {
    if (!settings.drain_bytes_per_second && !settings.drain_files_per_second) return;
    if (!drain_) {
        RFS_LOG_EVENT(log::Level::info, "settings: drain limits not applied: no background drain "
                                        "(mode=passthrough)");
        return;
    }
    // A limit the file does not set stays as it is (riakfsctl may have changed it).
    auto running = drain_->progress();
    std::uint64_t bytes = settings.drain_bytes_per_second.value_or(running.bytes_per_second);
    std::uint64_t files = settings.drain_files_per_second.value_or(running.files_per_second);
    drain_->set_limits(bytes, files);
    RFS_LOG_EVENT(log::Level::info, "drain limits set from the settings file",
                  {"bytes_per_second", std::to_string(bytes)},
                  {"files_per_second", std::to_string(files)});
}

void Service::apply(const RuntimeSettings& settings, bool at_start) {
    log::Level level = settings.log_level.value_or(log::Level::info);
    if (at_start && debug_flag_) level = log::Level::debug;
    log::set_level(level);
    if (!at_start) apply_drain_limits(settings);
    if (!at_start)
        RFS_LOG_EVENT(log::Level::info, "settings reloaded", {"file", settings_file_},
                      {"log_level", std::string(log::to_string(level))});
}

} // namespace rfs
