#include "tests/support/tls_test_certs.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tools/self_signed_cert.h"

namespace parley_test {

TestCertificate::TestCertificate() {
  char pattern[] = "/tmp/parley-tls-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  dir_ = pattern;
  cert_path_ = dir_ + "/cert.pem";
  key_path_ = dir_ + "/key.pem";
  tools::write_self_signed_cert(cert_path_, key_path_, error_);
}

TestCertificate::~TestCertificate() {
  if (dir_.empty()) return;
  unlink(cert_path_.c_str());
  unlink(key_path_.c_str());
  rmdir(dir_.c_str());
}

}  // namespace parley_test
