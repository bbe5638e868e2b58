// riakfs under systemd: the readiness protocol (sd_notify) and the journal (sd_journal_send),
// both through libsystemd. Outside systemd (no NOTIFY_SOCKET, no JOURNAL_STREAM) every call here
// does nothing, so the daemon runs the same from a shell, fstab or a container.
#pragma once

#include <string_view>

namespace rfs::systemd {

// True when stderr is the journal's stream for this service (JOURNAL_STREAM names stderr's
// device and inode, as systemd sets it): log events then go to the journal with their level as
// PRIORITY and their fields as RIAKFS_* journal fields.
bool stderr_is_journal();
// Sends every log event to the journal when stderr_is_journal(). Returns whether it does.
bool log_to_journal_if_attached();

// Type=notify: the service is up (READY=1) with a STATUS= line. Called once the mount answers.
void notify_ready(std::string_view status);
// A STATUS= line (what `systemctl status` shows).
void notify_status(std::string_view status);
// ExecReload: RELOADING=1 before re-reading settings, READY=1 with a status once done.
void notify_reloading();
void notify_reloaded(std::string_view status);
// SIGTERM: STOPPING=1 with a status saying what the stop waits for.
void notify_stopping(std::string_view status);

} // namespace rfs::systemd
