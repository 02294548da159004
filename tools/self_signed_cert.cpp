#include "tools/self_signed_cert.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "reactor/tls_context.h"

namespace tools {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  if (extension == nullptr) return false;
  bool ok = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return ok;
}

}  // namespace

bool write_self_signed_cert(const std::string& cert_path, const std::string& key_path, std::string& error,
                            int days) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (key == nullptr || cert == nullptr) {
    error = "cannot make a key: " + reactor::take_tls_errors("out of memory");
    return false;
  }
  X509_set_version(cert.get(), 2);  // v3, for the extensions
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (!add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
      !add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    error = "cannot sign the certificate: " + reactor::take_tls_errors("unknown error");
    return false;
  }
  mode_t old_mask = umask(077);
  File key_file(std::fopen(key_path.c_str(), "w"));
  umask(old_mask);
  File cert_file(std::fopen(cert_path.c_str(), "w"));
  if (key_file == nullptr || cert_file == nullptr) {
    error = "cannot write '" + (key_file == nullptr ? key_path : cert_path) + "'";
    return false;
  }
  if (PEM_write_PrivateKey(key_file.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_X509(cert_file.get(), cert.get()) != 1) {
    error = "cannot write the PEM files: " + reactor::take_tls_errors("I/O error");
    return false;
  }
  return true;
}

}  // namespace tools
