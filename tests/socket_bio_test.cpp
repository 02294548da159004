// reactor::new_socket_bio: the BIO under every TLS connection. It must behave like OpenSSL's
// socket BIO (retry flags on EAGAIN, EOF reported through BIO_eof) and never raise SIGPIPE.
#include "reactor/socket_bio.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace {

struct SocketPair {
  int ours = -1;
  int theirs = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0) {
      ours = fds[0];
      theirs = fds[1];
    }
  }
  ~SocketPair() {
    if (ours >= 0) close(ours);
    if (theirs >= 0) close(theirs);
  }
};

TEST(SocketBioTest, ReadsWritesAndSignalsRetryAndEndOfStream) {
  SocketPair pair;
  ASSERT_GE(pair.ours, 0);
  BIO* bio = reactor::new_socket_bio(pair.ours);
  ASSERT_NE(bio, nullptr);
  int fd = -1;
  EXPECT_EQ(BIO_get_fd(bio, &fd), pair.ours);
  EXPECT_EQ(fd, pair.ours);

  char buffer[16];
  EXPECT_EQ(BIO_read(bio, buffer, sizeof buffer), -1);  // nothing yet: retry, not failure
  EXPECT_TRUE(BIO_should_retry(bio));
  EXPECT_TRUE(BIO_should_read(bio));
  EXPECT_EQ(BIO_eof(bio), 0);

  ASSERT_EQ(BIO_write(bio, "hello", 5), 5);
  EXPECT_EQ(BIO_flush(bio), 1);
  ASSERT_EQ(read(pair.theirs, buffer, sizeof buffer), 5);
  EXPECT_EQ(std::string(buffer, 5), "hello");

  ASSERT_EQ(write(pair.theirs, "back", 4), 4);
  ASSERT_EQ(BIO_read(bio, buffer, sizeof buffer), 4);
  EXPECT_EQ(std::string(buffer, 4), "back");
  EXPECT_FALSE(BIO_should_retry(bio));

  close(pair.theirs);
  pair.theirs = -1;
  EXPECT_EQ(BIO_read(bio, buffer, sizeof buffer), 0);
  EXPECT_FALSE(BIO_should_retry(bio));
  EXPECT_EQ(BIO_eof(bio), 1);
  BIO_free(bio);
  // The BIO does not own the socket: it is still open after BIO_free.
  EXPECT_NE(fcntl(pair.ours, F_GETFD), -1);
}

TEST(SocketBioTest, FullSocketAsksForAWriteRetry) {
  SocketPair pair;
  ASSERT_GE(pair.ours, 0);
  BIO* bio = reactor::new_socket_bio(pair.ours);
  ASSERT_NE(bio, nullptr);
  std::string chunk(64 * 1024, 'x');
  int rc = 0;
  for (int i = 0; i < 1000 && (rc = BIO_write(bio, chunk.data(), static_cast<int>(chunk.size()))) > 0; ++i) {
  }
  EXPECT_EQ(rc, -1);
  EXPECT_TRUE(BIO_should_retry(bio));
  EXPECT_TRUE(BIO_should_write(bio));
  BIO_free(bio);
}

// With SIGPIPE at its default disposition (terminate), writing to a socket whose peer is gone
// must fail with EPIPE and leave the process alive.
TEST(SocketBioTest, WritingToAVanishedPeerRaisesNoSigpipe) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGPIPE, SIG_DFL);
    SocketPair pair;
    close(pair.theirs);
    pair.theirs = -1;
    BIO* bio = reactor::new_socket_bio(pair.ours);
    int rc = BIO_write(bio, "x", 1);
    int err = errno;
    _exit(rc == -1 && err == EPIPE && !BIO_should_retry(bio) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
