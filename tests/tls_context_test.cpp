// TlsContext: loading the certificate and key, and the one-line errors for bad files; parleyd
// turns those into one line on stderr and a non-zero exit.
#include "reactor/tls_context.h"

#include <gtest/gtest.h>

#include <fstream>
#include <openssl/ssl.h>

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

}  // namespace
