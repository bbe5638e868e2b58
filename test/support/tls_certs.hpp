// Certificates for the TLS tests, made on the spot with the `openssl` command (Debian's openssl
// package) in a directory the test owns: a CA, and, signed by it, a server certificate for
// localhost, 127.0.0.1 and ::1, the same one expired, one for another host name only, and a
// client certificate; plus a second CA that signed none of them. EC P-256 keys: quick to make.
// Header-only, no dependency but the standard library: the Riak client tests and the
// integration tests both use it. Single-threaded test code.
#pragma once

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace rfs::test {

class TestPki {
public:
    // Makes every file in `dir` (which must exist). Throws when openssl fails (its output is in
    // dir/openssl.log).
    explicit TestPki(std::string dir) : dir_(std::move(dir)) {
        write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                            "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
        write("wrong-host.ext", "subjectAltName=DNS:wrong.example\n"
                                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
        write("client.ext", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
        const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl("req -x509 " + ec +
                " -keyout ca.key -out ca.pem -days 30 -subj '/CN=riakfs test CA'");
        openssl("req -x509 " + ec +
                " -keyout other-ca.key -out other-ca.pem -days 30 -subj '/CN=some other CA'");
        openssl("req -new " + ec + " -keyout server.key -out server.csr -subj '/CN=localhost'");
        openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 30 "
                "-extfile server.ext -out server.pem");
        // notAfter a day before notBefore (now): expired since yesterday.
        openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days -1 "
                "-extfile server.ext -out expired.pem");
        openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days 30 "
                "-extfile wrong-host.ext -out wrong-host.pem");
        openssl("req -new " + ec + " -keyout client.key -out client.csr -subj '/CN=riakfs client'");
        openssl("x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 4 -days 30 "
                "-extfile client.ext -out client.pem");
    }

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string ca() const { return path("ca.pem"); }
    std::string other_ca() const { return path("other-ca.pem"); }
    // The server certificates all use server_key().
    std::string server_cert() const { return path("server.pem"); }
    std::string server_key() const { return path("server.key"); }
    std::string expired_cert() const { return path("expired.pem"); }
    std::string wrong_host_cert() const { return path("wrong-host.pem"); }
    std::string client_cert() const { return path("client.pem"); }
    std::string client_key() const { return path("client.key"); }

    // riak-devnode's arguments to serve TLS with `cert` (server_cert() by default).
    std::vector<std::string> devnode_args(const std::string& cert = {}) const {
        return {"--tls-cert", cert.empty() ? server_cert() : cert, "--tls-key", server_key()};
    }

private:
    void write(const std::string& name, const std::string& text) {
        std::ofstream(path(name), std::ios::binary) << text;
    }
    void openssl(const std::string& args) {
        const std::string cmd = "cd '" + dir_ + "' && openssl " + args + " >>openssl.log 2>&1";
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("openssl " + args + " failed (see " + dir_ + "/openssl.log)");
    }

    std::string dir_;
};

} // namespace rfs::test
