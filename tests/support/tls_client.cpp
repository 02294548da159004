#include "tests/support/tls_client.h"

#include <openssl/err.h>

#include <algorithm>

#include "reactor/tls_context.h"

namespace parley_test {

TlsClientSession::~TlsClientSession() {
  // Freeing an SSL that was not shut down marks its session not resumable; a test that keeps
  // the session for a second connection means it to stay good.
  if (ssl_ != nullptr && established_) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
  if (context_ != nullptr) SSL_CTX_free(context_);
}

bool TlsClientSession::start(const TlsClientOptions& options) {
  context_ = SSL_CTX_new(TLS_client_method());
  if (context_ == nullptr) {
    error_ = "SSL_CTX_new failed";
    return false;
  }
  SSL_CTX_set_min_proto_version(context_, options.min_version);
  SSL_CTX_set_max_proto_version(context_, options.max_version);
  SSL_CTX_set_verify(context_, SSL_VERIFY_NONE, nullptr);
  ssl_ = SSL_new(context_);
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || network_in_ == nullptr || network_out_ == nullptr) {
    error_ = "out of memory";
    return false;
  }
  // A memory BIO that runs dry reports "retry", which SSL turns into WANT_READ.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);
  SSL_set_connect_state(ssl_);
  if (!options.server_name.empty()) SSL_set_tlsext_host_name(ssl_, options.server_name.c_str());
  if (!options.alpn.empty()) {
    std::string wire(1, static_cast<char>(options.alpn.size()));
    wire += options.alpn;
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  if (options.resume != nullptr) SSL_set_session(ssl_, options.resume);
  return true;
}

int TlsClientSession::handshake() {
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    return 1;
  }
  int error = SSL_get_error(ssl_, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return 0;
  error_ = "TLS handshake failed: " + reactor::take_tls_errors("connection closed");
  return -1;
}

void TlsClientSession::feed(const void* data, size_t length) {
  BIO_write(network_in_, data, static_cast<int>(length));
}

bool TlsClientSession::decrypt(std::string& out) {
  if (!established_) return true;
  char buffer[16384];
  for (;;) {
    size_t got = 0;
    int rc = SSL_read_ex(ssl_, buffer, sizeof buffer, &got);
    if (rc == 1) {
      out.append(buffer, got);
      continue;
    }
    int error = SSL_get_error(ssl_, rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return true;
    if (error == SSL_ERROR_ZERO_RETURN) {
      close_notify_ = true;
      return true;
    }
    error_ = "TLS read failed: " + reactor::take_tls_errors("protocol error");
    return false;
  }
}

std::string TlsClientSession::encrypt(std::string_view plaintext, size_t record_size) {
  if (record_size == 0) record_size = plaintext.size();
  for (size_t at = 0; at < plaintext.size();) {
    size_t length = std::min(record_size, plaintext.size() - at);
    size_t written = 0;
    if (SSL_write_ex(ssl_, plaintext.data() + at, length, &written) != 1) break;  // memory BIO: never blocks
    at += written;
  }
  return take_output();
}

std::string TlsClientSession::take_output() {
  std::string out;
  char* data = nullptr;
  long length = BIO_get_mem_data(network_out_, &data);
  if (length > 0) out.assign(data, static_cast<size_t>(length));
  (void)BIO_reset(network_out_);
  return out;
}

std::string TlsClientSession::alpn_selected() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

}  // namespace parley_test
