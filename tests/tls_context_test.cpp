// TlsContext: loading the certificate and key, and the one-line errors for bad files; parleyd
// turns those into one line on stderr and a non-zero exit. The client side: verification by CA
// file, name and address, the verify result as one line, -k, SNI, ALPN and session resumption,
// with a client and a server TlsStream handshaking over a socketpair.
#include "reactor/tls_context.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "reactor/tls_stream.h"

#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"

namespace {

using parley_test::TestCertificate;

TEST(TlsContext, LoadsAMatchingPairWithTls12To13AndSmallIdleBuffers) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  std::string error;
  auto context = reactor::TlsContext::create(cert.cert_path(), cert.key_path(), error);
  ASSERT_NE(context, nullptr) << error;
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context->native()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(context->native()), TLS1_3_VERSION);
  EXPECT_TRUE(SSL_CTX_get_mode(context->native()) & SSL_MODE_RELEASE_BUFFERS);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(context->native()), SSL_SESS_CACHE_OFF);
  EXPECT_FALSE(SSL_CTX_get_options(context->native()) & SSL_OP_NO_TICKET);
  EXPECT_EQ(SSL_CTX_get_num_tickets(context->native()), 1u);
}

TEST(TlsContext, MissingFileNamesTheFileAndTheReason) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  std::string error;
  EXPECT_EQ(reactor::TlsContext::create(cert.dir() + "/nope.pem", cert.key_path(), error), nullptr);
  EXPECT_EQ(error, "cannot read TLS certificate '" + cert.dir() + "/nope.pem': No such file or directory");
  EXPECT_EQ(reactor::TlsContext::create(cert.cert_path(), cert.dir() + "/nokey.pem", error), nullptr);
  EXPECT_EQ(error, "cannot read TLS key '" + cert.dir() + "/nokey.pem': No such file or directory");
}

TEST(TlsContext, NotPemAndMismatchedKeyAreRefused) {
  TestCertificate cert;
  TestCertificate other;
  ASSERT_TRUE(cert.ok() && other.ok());
  std::string garbage = cert.dir() + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  std::string error;
  EXPECT_EQ(reactor::TlsContext::create(garbage, cert.key_path(), error), nullptr);
  EXPECT_EQ(error.rfind("cannot load TLS certificate '" + garbage + "': ", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(reactor::TlsContext::create(cert.cert_path(), other.key_path(), error), nullptr);
  EXPECT_NE(error.find("mismatch"), std::string::npos) << error;
  std::remove(garbage.c_str());
}

TEST(TlsContext, ParleydWithABadKeyPrintsOneLineAndExitsNonZero) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  parley_test::ParleydProcess server({"--tls-cert", cert.cert_path(), "--tls-key", cert.dir() + "/missing.pem"});
  EXPECT_FALSE(server.ok());
  server.stop();
  EXPECT_NE(server.status_text().find("exited with status 1"), std::string::npos) << server.status_text();
  EXPECT_NE(server.stderr_text().find("parleyd: cannot read TLS key '" + cert.dir() + "/missing.pem'"),
            std::string::npos)
      << server.stderr_text();
}

// A client and a server TlsStream over a non-blocking socketpair.
class TlsClientPair {
 public:
  TlsClientPair(const reactor::TlsContext& server, const reactor::TlsContext& client, const char* host) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return;
    server_fd_ = fds[0];
    client_fd_ = fds[1];
    server_.attach(server.new_connection(server_fd_));
    client_.attach(client.new_client_connection(client_fd_, host));
  }
  ~TlsClientPair() {
    client_.shutdown();  // a session freed without close_notify is no longer offered
    server_.release();
    client_.release();
    if (server_fd_ >= 0) close(server_fd_);
    if (client_fd_ >= 0) close(client_fd_);
  }

  // Both sides' handshakes in turn until the client's ends: its last status.
  reactor::IoStatus handshake() {
    reactor::IoStatus client = reactor::IoStatus::kAgain;
    for (int i = 0; i < 20 && client == reactor::IoStatus::kAgain; ++i) {
      client = client_.handshake().status;
      if (!server_.established()) server_.handshake();
    }
    return client;
  }
  // A message each way, so the client also reads what follows the handshake (the ticket).
  bool exchange() {
    char buffer[64];
    const iovec ping{const_cast<char*>("ping"), 4};
    if (client_.write_vector(&ping, 1).bytes != 4 || server_.read(buffer, sizeof buffer).bytes != 4) return false;
    const iovec pong{const_cast<char*>("pong"), 4};
    return server_.write_vector(&pong, 1).bytes == 4 && client_.read(buffer, sizeof buffer).bytes == 4 &&
           std::memcmp(buffer, "pong", 4) == 0;
  }

  reactor::TlsStream server_;
  reactor::TlsStream client_;
  int server_fd_ = -1;
  int client_fd_ = -1;
};

class TlsClientContext : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cert_.ok()) << cert_.error();
    std::string error;
    server_ = reactor::TlsContext::create(cert_.cert_path(), cert_.key_path(), error);
    ASSERT_NE(server_, nullptr) << error;
  }
  std::unique_ptr<reactor::TlsContext> client(bool insecure, const std::string& ca_file) {
    std::string error;
    auto context = reactor::TlsContext::create_client({insecure, ca_file}, error);
    EXPECT_NE(context, nullptr) << error;
    return context;
  }

  TestCertificate cert_;
  std::unique_ptr<reactor::TlsContext> server_;
};

TEST_F(TlsClientContext, CaFileTrustsTheCertificateByAddressAndByNameWithAlpnAndSni) {
  auto context = client(false, cert_.cert_path());
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context->native()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(context->native()), TLS1_3_VERSION);
  for (const char* host : {"127.0.0.1", "localhost"}) {
    TlsClientPair pair(*server_, *context, host);
    ASSERT_EQ(pair.handshake(), reactor::IoStatus::kOk)
        << host << ": " << reactor::describe_client_handshake_failure(pair.client_.native(), "?");
    EXPECT_TRUE(pair.exchange());
    const unsigned char* alpn = nullptr;
    unsigned int alpn_length = 0;
    SSL_get0_alpn_selected(pair.client_.native(), &alpn, &alpn_length);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_length), "http/1.1");
    // RFC 6066 3: SNI for names only, never for an address.
    const char* sni = SSL_get_servername(pair.server_.native(), TLSEXT_NAMETYPE_host_name);
    if (std::string(host) == "localhost") {
      EXPECT_STREQ(sni, "localhost");
    } else {
      EXPECT_EQ(sni, nullptr);
    }
  }
}

TEST_F(TlsClientContext, SelfSignedCertificateFailsWithTheVerifyResult) {
  auto context = client(false, "");  // the system's trust store does not know the test certificate
  ASSERT_NE(context, nullptr);
  TlsClientPair pair(*server_, *context, "127.0.0.1");
  ASSERT_EQ(pair.handshake(), reactor::IoStatus::kError);
  EXPECT_EQ(reactor::describe_client_handshake_failure(pair.client_.native(), "?"),
            "certificate verify failed: self-signed certificate");
}

TEST_F(TlsClientContext, CertificateForOtherNamesFails) {
  auto context = client(false, cert_.cert_path());
  ASSERT_NE(context, nullptr);
  TlsClientPair by_name(*server_, *context, "chat.example");
  ASSERT_EQ(by_name.handshake(), reactor::IoStatus::kError);
  EXPECT_EQ(reactor::describe_client_handshake_failure(by_name.client_.native(), "?"),
            "certificate verify failed: hostname mismatch");
  TlsClientPair by_address(*server_, *context, "127.0.0.2");
  ASSERT_EQ(by_address.handshake(), reactor::IoStatus::kError);
  EXPECT_EQ(reactor::describe_client_handshake_failure(by_address.client_.native(), "?"),
            "certificate verify failed: IP address mismatch");
}

TEST_F(TlsClientContext, InsecureSkipsVerification) {
  auto context = client(true, "");
  ASSERT_NE(context, nullptr);
  TlsClientPair pair(*server_, *context, "chat.example");
  ASSERT_EQ(pair.handshake(), reactor::IoStatus::kOk);
  EXPECT_TRUE(pair.exchange());
}

TEST_F(TlsClientContext, KeptSessionIsResumedByTheNextConnection) {
  auto context = client(false, cert_.cert_path());
  ASSERT_NE(context, nullptr);
  {
    TlsClientPair first(*server_, *context, "localhost");
    ASSERT_EQ(first.handshake(), reactor::IoStatus::kOk);
    ASSERT_TRUE(first.exchange());
    EXPECT_FALSE(reactor::TlsContext::resumed(first.client_.native()));
    context->keep_session(first.client_.native());
  }
  TlsClientPair second(*server_, *context, "localhost");
  ASSERT_EQ(second.handshake(), reactor::IoStatus::kOk);
  EXPECT_TRUE(reactor::TlsContext::resumed(second.client_.native()));
  EXPECT_TRUE(second.exchange());
}

TEST_F(TlsClientContext, UnreadableOrEmptyCaFileIsOneLine) {
  std::string error;
  EXPECT_EQ(reactor::TlsContext::create_client({false, cert_.dir() + "/nope.pem"}, error), nullptr);
  EXPECT_EQ(error, "cannot read CA file '" + cert_.dir() + "/nope.pem': No such file or directory");
  const std::string garbage = cert_.dir() + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  EXPECT_EQ(reactor::TlsContext::create_client({false, garbage}, error), nullptr);
  EXPECT_EQ(error.rfind("cannot load CA file '" + garbage + "': ", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  std::remove(garbage.c_str());
}

}  // namespace
