// What an operator hands riakfs (lib/common): the command line and its -o options, as mount(8),
// fstab and systemd pass them, and the settings= file read at start and at every SIGHUP.
// Input: a selector byte, then NUL-separated arguments (or the settings file's text).
// Properties: no crash; a failure always says why (a message that is not empty).
#include "fuzz_input.hpp"

#include "lib/common/mount_options.hpp"
#include "lib/common/runtime_settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rfs::fuzz::Input in(data, size);
    const std::uint8_t which = in.byte();
    if (which & 1) {
        auto parsed = rfs::parse_runtime_settings(in.rest(), "settings.conf");
        if (auto* error = std::get_if<std::string>(&parsed)) {
            RFS_FUZZ_CHECK(!error->empty());
        }
        return 0;
    }
    auto args = in.fields('\0');
    auto parsed = rfs::parse_command_line(args);
    if (auto* error = std::get_if<rfs::ParseError>(&parsed)) {
        RFS_FUZZ_CHECK(!error->message.empty());
    } else {
        (void)rfs::effective_timeouts(std::get<rfs::CommandLine>(parsed).options);
    }
    // Each argument also as a single -o option applied to the defaults.
    rfs::MountOptions options;
    for (const auto& arg : args)
        (void)rfs::apply_riakfs_option(arg, options);
    return 0;
}
