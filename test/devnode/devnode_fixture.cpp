// riak-devnode test fixture (see devnode_fixture.hpp).
#include "devnode_fixture.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

namespace rfs::devnode::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// In a forked child: runs argv[0] with `argv`, or exits 127 like a shell.
[[noreturn]] void exec_or_exit(std::vector<std::string>& argv) {
    std::vector<char*> cargv;
    for (auto& a : argv)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
}

} // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequal(n, name)) return v;
    return std::nullopt;
}

size_t HttpResponse::count(std::string_view name) const {
    size_t n = 0;
    for (const auto& h : headers)
        if (iequal(h.first, name)) ++n;
    return n;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "devnode-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string Devnode::binary() {
    const char* b = std::getenv("DEVNODE_BIN");
    if (b == nullptr) throw std::runtime_error("DEVNODE_BIN is not set");
    return b;
}

Devnode::Devnode(std::vector<std::string> args, std::string data_dir, AdminRoutes admin)
    : args_(std::move(args)), admin_(admin) {
    if (data_dir.empty()) {
        owned_dir_.emplace();
        data_dir_ = owned_dir_->path() + "/data";
    } else {
        data_dir_ = std::move(data_dir);
    }
    stderr_path_ = data_dir_ + ".stderr";
    start();
}

Devnode::~Devnode() {
    kill9();
    std::error_code ec;
    std::filesystem::remove(stderr_path_, ec);
}

void Devnode::start() {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv = {binary(), "--listen", "127.0.0.1:0", "--data", data_dir_};
    if (admin_ == AdminRoutes::on) {
        argv.emplace_back("--admin");
        argv.emplace_back("127.0.0.1:0");
    }
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = fork();
    if (pid_ == 0) {
        dup2(out[1], 1);
        int err = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (err >= 0) dup2(err, 2);
        close(out[0]);
        exec_or_exit(argv);
    }
    close(out[1]);
    auto read_line = [&] {
        std::string line;
        char c;
        while (read(out[0], &c, 1) == 1 && c != '\n')
            line += c;
        return line;
    };
    // "... listening on HOST:PORT", then with --admin "... admin routes on HOST:PORT".
    auto port_after = [&](const std::string& line, std::string_view marker) {
        auto colon = line.rfind(':');
        if (line.find(marker) == std::string::npos || colon == std::string::npos) {
            close(out[0]);
            throw std::runtime_error("riak-devnode did not start: " + stderr_text());
        }
        return static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
    };
    port_ = port_after(read_line(), "listening on");
    admin_port_ = 0;
    if (admin_ == AdminRoutes::on) admin_port_ = port_after(read_line(), "admin routes on");
    close(out[0]);
}

void Devnode::kill9() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        waitpid(pid_, &st, 0);
        pid_ = -1;
    }
}

int Devnode::terminate() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000; ++i) {
        if (waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill9();
    return -1;
}

void Devnode::restart() {
    kill9();
    start();
}

std::string Devnode::stderr_text() const {
    return read_file(stderr_path_);
}

std::pair<int, std::string> Devnode::run_to_exit(const std::vector<std::string>& args) {
    TempDir tmp;
    std::string err_path = tmp.path() + "/stderr";
    std::vector<std::string> argv = {binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    int pid = fork();
    if (pid == 0) {
        int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, 2);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        exec_or_exit(argv);
    }
    // A server that unexpectedly starts would never exit: give up after 5 s.
    int st = 0;
    for (int i = 0; i < 500; ++i) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, read_file(err_path)};
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return {0, "still running"};
}

Client::Client(std::string host, uint16_t port)
    : host_(std::move(host)), port_(port), sock_(ioc_) {}

bool has_ipv6_loopback() {
    asio::io_context ioc;
    asio::ip::tcp::acceptor probe(ioc);
    boost::system::error_code ec;
    probe.open(asio::ip::tcp::v6(), ec);
    if (!ec) probe.bind({asio::ip::make_address("::1"), 0}, ec);
    return !ec;
}

void Client::connect() {
    close();
    asio::ip::tcp::resolver resolver(ioc_);
    asio::connect(sock_, resolver.resolve(host_, std::to_string(port_)));
    sock_.set_option(asio::ip::tcp::no_delay(true));
}

void Client::close() {
    boost::system::error_code ec;
    sock_.close(ec);
    buf_.clear();
}

void Client::write_raw(std::string_view bytes) {
    asio::write(sock_, asio::buffer(bytes));
}

bool Client::wait_readable(std::chrono::milliseconds timeout) {
    if (buf_.size() > 0) return true;
    pollfd p{sock_.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

HttpResponse Client::read_response(bool head) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 31);
    parser.header_limit(1 << 20);
    if (head) parser.skip(true);
    http::read(sock_, buf_, parser);
    auto& msg = parser.get();
    HttpResponse r;
    r.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg)
        r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = std::move(msg.body());
    r.keep_alive = msg.keep_alive();
    return r;
}

HttpResponse Client::request(std::string_view method, std::string_view target, Headers headers,
                             std::string body) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host_ + ":" + std::to_string(port_));
    for (const auto& [n, v] : headers)
        req.insert(n, v);
    if (!body.empty() || method == "PUT" || method == "POST") {
        req.body() = std::move(body);
        req.prepare_payload();
    }
    for (int attempt = 0;; ++attempt) {
        try {
            if (!sock_.is_open()) connect();
            http::write(sock_, req);
            HttpResponse r = read_response(method == "HEAD");
            if (!r.keep_alive) close();
            return r;
        } catch (const boost::system::system_error&) {
            // The server may have closed a kept-alive connection: retry once on a new one.
            close();
            if (attempt > 0) throw;
        }
    }
}

HttpResponse Client::put(std::string_view target, std::string body, std::string content_type,
                         Headers h) {
    h.emplace_back("Content-Type", std::move(content_type));
    return request("PUT", target, std::move(h), std::move(body));
}

std::vector<std::string> split_json_objects(std::string_view s) {
    std::vector<std::string> out;
    int depth = 0;
    bool in_str = false, esc = false;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{') {
            if (depth++ == 0) start = i;
        } else if (c == '}') {
            if (--depth == 0) out.emplace_back(s.substr(start, i - start + 1));
        }
    }
    return out;
}

} // namespace rfs::devnode::test
