#pragma once
// A self-signed certificate and key in a fresh temporary directory, removed on destruction.
// Test support only.
#include <string>

namespace parley_test {

class TestCertificate {
 public:
  // Makes the directory and the pair; ok() tells whether it worked, error() why not.
  TestCertificate();
  ~TestCertificate();
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& cert_path() const { return cert_path_; }
  const std::string& key_path() const { return key_path_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string cert_path_;
  std::string key_path_;
  std::string error_;
};

}  // namespace parley_test
