#pragma once
// The client side of a TLS session for tests, over memory BIOs: the caller moves ciphertext
// between the session and its socket itself, so a test can send records whole, split
// anywhere, or one plaintext byte per record. Certificates are not verified (tests use
// self-signed pairs). Test support only.
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley_test {

struct TlsClientOptions {
  int min_version = TLS1_2_VERSION;  // e.g. TLS1_3_VERSION to insist on 1.3
  int max_version = TLS1_3_VERSION;
  SSL_SESSION* resume = nullptr;     // a session to offer for resumption (not owned)
  std::string alpn = "http/1.1";     // one protocol offered; empty: no ALPN extension
  std::string server_name = "localhost";
};

class TlsClientSession {
 public:
  TlsClientSession() = default;
  ~TlsClientSession();
  TlsClientSession(const TlsClientSession&) = delete;
  TlsClientSession& operator=(const TlsClientSession&) = delete;

  // Creates the session; false with error() set on failure.
  bool start(const TlsClientOptions& options);
  // Advances the handshake: 1 finished, 0 needs input (send take_output() first), -1 failed.
  int handshake();
  bool established() const { return established_; }

  // Ciphertext from the socket.
  void feed(const void* data, size_t length);
  // True while fed ciphertext waits to be processed (by handshake() or decrypt()).
  bool has_input() const { return BIO_ctrl_pending(network_in_) > 0; }
  // Decrypts what was fed, appending plaintext to `out`; false on a TLS failure (error()).
  // Records the server's close_notify (close_notify_received()).
  bool decrypt(std::string& out);
  // Encrypts `plaintext` in records of at most `record_size` plaintext bytes (0: OpenSSL's
  // maximum) and returns all ciphertext waiting to be sent.
  std::string encrypt(std::string_view plaintext, size_t record_size = 0);
  // Ciphertext waiting to be sent (handshake messages).
  std::string take_output();

  bool close_notify_received() const { return close_notify_; }
  const std::string& error() const { return error_; }
  SSL* ssl() const { return ssl_; }
  // The negotiated protocol version, e.g. TLS1_3_VERSION.
  int version() const { return SSL_version(ssl_); }
  bool session_reused() const { return SSL_session_reused(ssl_) == 1; }
  // The ALPN protocol the server selected, empty when none.
  std::string alpn_selected() const;
  // A reference to the session (for resumption); the caller SSL_SESSION_free()s it.
  SSL_SESSION* get1_session() const { return SSL_get1_session(ssl_); }

 private:
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // we write ciphertext from the socket here; SSL reads it
  BIO* network_out_ = nullptr;  // SSL writes ciphertext here; we send it
  bool established_ = false;
  bool close_notify_ = false;
  std::string error_;
};

}  // namespace parley_test
