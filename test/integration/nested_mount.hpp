// Tests whose SOURCE holds other mounts (a tmpfs mounted below SOURCE in MountOptions::prepared):
// those must be unmounted after the FUSE mount and before the fixture removes its directories.
#pragma once

#include <sys/mount.h>

#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace riakfs::it {

// Declared after the MountFixture, so destroyed before it: unmounts FUSE first, then the mounts
// nested in SOURCE (lazily), so that the fixture can remove its temporary directory.
struct Unmounter {
    MountFixture& fx;
    std::vector<std::string> nested; // mount points inside SOURCE

    ~Unmounter() {
        fx.unmount();
        for (auto& p : nested)
            ::umount2(p.c_str(), MNT_DETACH);
    }
};

} // namespace riakfs::it
