#include "lib/common/mount_table.hpp"

#include <cctype>
#include <fstream>
#include <sstream>

namespace rfs {

std::string unescape_mountinfo(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() &&
            std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 3]))) {
            out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                                     (text[i + 3] - '0'));
            i += 3;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::optional<MountEntry> topmost_mount(const std::string& dir) {
    std::ifstream info("/proc/self/mountinfo");
    std::string line;
    std::optional<MountEntry> found;
    while (std::getline(info, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mount_point;
        fields >> id >> parent >> devno >> root >> mount_point;
        if (unescape_mountinfo(mount_point) != dir) continue;
        size_t dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream rest(line.substr(dash + 3));
        MountEntry m;
        rest >> m.type >> m.source;
        m.source = unescape_mountinfo(m.source);
        found = m;
    }
    return found;
}

} // namespace rfs
