#pragma once
// Server-side TLS settings shared by every connection of a process (OpenSSL SSL_CTX): the
// certificate chain and key, TLS 1.2 and 1.3 only, ALPN http/1.1, stateless session tickets,
// and buffers released while a connection is idle. Knows nothing of WebSocket.
#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace reactor {

class TlsContext {
 public:
  // Loads a PEM certificate chain and its PEM private key and checks that they match. Returns
  // nullptr with `error` set to one line naming the file and OpenSSL's reason on failure.
  static std::unique_ptr<TlsContext> create(const std::string& cert_file, const std::string& key_file,
                                            std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A server-side SSL bound to the non-blocking socket `fd`, in accept state; nullptr when out
  // of memory. The caller frees it with SSL_free.
  SSL* new_connection(int fd) const;
  // The underlying SSL_CTX (for tests and benchmarks that drive handshakes in memory).
  SSL_CTX* native() const { return context_; }

 private:
  explicit TlsContext(SSL_CTX* context) : context_(context) {}
  SSL_CTX* context_;
};

// OpenSSL's error queue as one line ("reason; reason"), emptied; `fallback` when it is empty.
std::string take_tls_errors(const char* fallback);

}  // namespace reactor
