// riakfs-it-slowfs: a tiny FUSE file system whose chosen operations wait for the test's word, to
// be mounted inside SOURCE as a source on which close(), truncate, reads or opendir take as long
// as the test wants (a stuck NFS or FUSE server, a slow disk).
//
//   riakfs-it-slowfs MOUNTPOINT OP[,OP...]     OP: flush, setattr, read, opendir
//
// ("read" waits only for reads of the second half of a file, see sf_read.)
//
// Fixed content: regular files "a", "b", "c" and "d" of 1 MiB of zeros, and an empty directory
// "dir". Each call of a chosen operation writes its name's first letter ('f', 's', 'r', 'o') to
// descriptor 3 and then waits for one byte on descriptor 4: every byte the test writes lets one
// waiting call go on, and closing the descriptor lets every call go on from then on. After
// mounting it writes 'M' to descriptor 3. Ends on SIGTERM (or when the mount goes).
#include <fuse_lowlevel.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int kNotifyFd = 3, kGateFd = 4;
constexpr off_t kFileSize = 1 << 20;
constexpr fuse_ino_t kDirIno = 6;
const char* const kFiles[] = {"a", "b", "c", "d"}; // inodes 2..5

std::string g_slow;
std::mutex g_mu;
off_t g_size[4] = {kFileSize, kFileSize, kFileSize, kFileSize}; // guarded by g_mu
std::atomic<bool> g_gate_open{false};

bool slow(const char* op) {
    return ("," + g_slow + ",").find("," + std::string(op) + ",") != std::string::npos;
}

// Tells the test the call has arrived, then waits for its word.
void wait_if_slow(const char* op) {
    if (!slow(op) || g_gate_open) return;
    char c = op[0];
    (void)!::write(kNotifyFd, &c, 1);
    ssize_t n;
    do
        n = ::read(kGateFd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0) g_gate_open = true;
}

bool is_file(fuse_ino_t ino) {
    return ino >= 2 && ino < 2 + 4;
}

struct stat attr_of(fuse_ino_t ino) {
    struct stat st {};
    st.st_ino = ino;
    if (ino == FUSE_ROOT_ID || ino == kDirIno) {
        st.st_mode = S_IFDIR | 0755;
        st.st_nlink = 2;
    } else {
        st.st_mode = S_IFREG | 0644;
        st.st_nlink = 1;
        std::lock_guard lock(g_mu);
        st.st_size = g_size[ino - 2];
    }
    return st;
}

void sf_init(void*, fuse_conn_info* conn) {
    // A truncating open then arrives as OPEN and SETATTR, so "setattr" covers O_TRUNC too.
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

void sf_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOENT);
    fuse_ino_t ino = 0;
    for (int i = 0; i < 4; ++i)
        if (strcmp(name, kFiles[i]) == 0) ino = 2 + i;
    if (strcmp(name, "dir") == 0) ino = kDirIno;
    if (!ino) return (void)fuse_reply_err(req, ENOENT);
    fuse_entry_param e{};
    e.ino = ino;
    e.attr = attr_of(ino);
    e.attr_timeout = e.entry_timeout = 1.0;
    fuse_reply_entry(req, &e);
}

void sf_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    if (ino != FUSE_ROOT_ID && ino != kDirIno && !is_file(ino))
        return (void)fuse_reply_err(req, ENOENT);
    struct stat st = attr_of(ino);
    fuse_reply_attr(req, &st, 1.0);
}

void sf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
    if ((to_set & FUSE_SET_ATTR_SIZE) && is_file(ino)) {
        wait_if_slow("setattr");
        std::lock_guard lock(g_mu);
        g_size[ino - 2] = attr->st_size;
    }
    struct stat st = attr_of(ino);
    fuse_reply_attr(req, &st, 1.0);
}

void sf_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (!is_file(ino)) return (void)fuse_reply_err(req, EISDIR);
    fi->direct_io = 1; // every read reaches us
    fuse_reply_open(req, fi);
}

void sf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    // Only the second half waits: an open for reading through riakfs starts the read of the
    // first 128 KiB itself (posix_fadvise), which the test does not count.
    if (off >= kFileSize / 2) wait_if_slow("read");
    off_t end;
    {
        std::lock_guard lock(g_mu);
        end = g_size[ino - 2];
    }
    size_t n = off >= end ? 0 : static_cast<size_t>(std::min<off_t>(end - off, off_t(size)));
    std::vector<char> zeros(n);
    fuse_reply_buf(req, zeros.data(), n);
}

void sf_write(fuse_req_t req, fuse_ino_t, const char*, size_t size, off_t, fuse_file_info*) {
    fuse_reply_write(req, size);
}

void sf_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    wait_if_slow("flush");
    fuse_reply_err(req, 0);
}

void sf_opendir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    wait_if_slow("opendir");
    fuse_reply_open(req, fi);
}

void sf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    std::vector<std::pair<std::string, fuse_ino_t>> names = {{".", ino}, {"..", FUSE_ROOT_ID}};
    if (ino == FUSE_ROOT_ID) {
        for (int i = 0; i < 4; ++i)
            names.emplace_back(kFiles[i], 2 + i);
        names.emplace_back("dir", kDirIno);
    }
    std::vector<char> buf(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(off); i < names.size(); ++i) {
        struct stat st = attr_of(names[i].second);
        size_t n = fuse_add_direntry(req, buf.data() + used, size - used, names[i].first.c_str(),
                                     &st, static_cast<off_t>(i + 1));
        if (n > size - used) break;
        used += n;
    }
    fuse_reply_buf(req, buf.data(), used);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MOUNTPOINT OP[,OP...]\n", argv[0]);
        return 2;
    }
    g_slow = argv[2];
    fuse_lowlevel_ops ops{};
    ops.init = sf_init;
    ops.lookup = sf_lookup;
    ops.getattr = sf_getattr;
    ops.setattr = sf_setattr;
    ops.open = sf_open;
    ops.read = sf_read;
    ops.write = sf_write;
    ops.flush = sf_flush;
    ops.opendir = sf_opendir;
    ops.readdir = sf_readdir;
    char arg0[] = "riakfs-it-slowfs";
    char* fargv[] = {arg0, nullptr};
    fuse_args args = FUSE_ARGS_INIT(1, fargv);
    // fuse_session_new() copies the arguments into memory of its own: freed on every return.
    struct FreeArgs {
        fuse_args* args;
        ~FreeArgs() { fuse_opt_free_args(args); }
    } free_args{&args};
    fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
    if (!se) return 1;
    if (fuse_set_signal_handlers(se) != 0) return 1;
    if (fuse_session_mount(se, argv[1]) != 0) return 1;
    (void)!::write(kNotifyFd, "M", 1);
    // Several threads: every call that waits must not hold back the others.
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(config, 16);
    int rc = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc == 0 ? 0 : 1;
}
