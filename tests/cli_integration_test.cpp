// parley-cli as a child process against a real parleyd: echo over piped stdin, exit codes,
// Ctrl-C, reconnecting after a server restart, and the chat mode between two users.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/room_log_test_support.h"
#include "tests/support/tls_test_certs.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 4000ms;  // generous upper bound; the tests normally take milliseconds

// parley-cli with pipes on stdin, stdout and stderr. Always killed and reaped by the destructor.
class CliProcess {
 public:
  explicit CliProcess(std::vector<std::string> args) {
    const std::string binary = parley_test::build_dir() + "/parley-cli";
    args.insert(args.begin(), binary);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];
    stderr_fd_ = err[0];
    fcntl(stdout_fd_, F_SETFL, O_NONBLOCK);
    fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);
  }

  ~CliProcess() {
    close_stdin();
    if (pid_ > 0 && exit_code_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
    if (stderr_fd_ >= 0) close(stderr_fd_);
  }

  void write_stdin(const std::string& text) {
    ASSERT_EQ(write(stdin_fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  void close_stdin() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
  }
  void signal(int signo) { kill(pid_, signo); }

  // Waits until stdout (or stderr) contains `text` `count` times; false on timeout or exit.
  bool wait_stdout(const std::string& text, int count = 1) { return wait_for(stdout_, text, count); }
  bool wait_stderr(const std::string& text, int count = 1) { return wait_for(stderr_, text, count); }

  // Waits for the exit; its code, 128 + signal, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds limit = kWait) {
    const auto deadline = Clock::now() + limit;
    while (exit_code_ < 0) {
      drain();
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() > deadline) return -1;
      poll_outputs(10ms);
    }
    drain();
    return exit_code_;
  }

  const std::string& out() const { return stdout_; }
  const std::string& err() const { return stderr_; }

 private:
  static int occurrences(const std::string& haystack, const std::string& needle) {
    int n = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
    return n;
  }

  bool wait_for(const std::string& stream, const std::string& text, int count) {
    const auto deadline = Clock::now() + kWait;
    for (;;) {
      drain();
      if (occurrences(stream, text) >= count) return true;
      if (Clock::now() > deadline) return false;
      poll_outputs(20ms);
    }
  }

  void poll_outputs(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
    poll(fds, 2, static_cast<int>(timeout.count()));
  }

  void drain() {
    char buffer[4096];
    for (auto [fd, text] : {std::pair{stdout_fd_, &stdout_}, std::pair{stderr_fd_, &stderr_}}) {
      ssize_t n;
      while ((n = read(fd, buffer, sizeof buffer)) > 0) text->append(buffer, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int exit_code_ = -1;
  std::string stdout_;
  std::string stderr_;
};

std::string url(const ParleydProcess& server, const char* path) {
  return "ws://127.0.0.1:" + std::to_string(server.port()) + path;
}

// A port where nothing listens: bound (so nobody else takes it) but never listening.
struct DeadPort {
  DeadPort() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
  }
  ~DeadPort() { close(fd); }
  int fd = -1;
  uint16_t port = 0;
};

// Skips the calling test when this parleyd does not serve /chat yet.
#define SKIP_WITHOUT_CHAT(server)                                                                \
  do {                                                                                           \
    CliProcess probe({"-q", "--retries", "0", url(server, "/chat")});                            \
    probe.close_stdin();                                                                         \
    probe.wait_exit();                                                                           \
    if (probe.err().find("HTTP 404") != std::string::npos) GTEST_SKIP() << "parleyd has no /chat"; \
  } while (0)

TEST(CliIntegration, EchoesPipedLinesAndExitsCleanly) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({url(server, "/echo")});
  cli.write_stdin("hi\n\nsecond line \xc3\xa9\nno newline at the end");
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_EQ(cli.out(), "hi\n\nsecond line \xc3\xa9\nno newline at the end\n");
  EXPECT_NE(cli.err().find("connected to " + url(server, "/echo")), std::string::npos) << cli.err();
  EXPECT_NE(cli.err().find("closed 1000"), std::string::npos) << cli.err();
}

TEST(CliIntegration, QuietPrintsOnlyMessages) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({"-q", url(server, "/echo")});
  cli.write_stdin("one\ntwo\n");
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_EQ(cli.out(), "one\ntwo\n");
  EXPECT_EQ(cli.err(), "");
}

TEST(CliIntegration, InvalidUtf8LineIsSkipped) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({url(server, "/echo")});
  cli.write_stdin("ok\nbad \xff\nstill ok\n");
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_EQ(cli.out(), "ok\nstill ok\n");
  EXPECT_NE(cli.err().find("not valid UTF-8"), std::string::npos) << cli.err();
}

TEST(CliIntegration, CtrlCClosesWithTheCloseHandshake) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({url(server, "/echo")});
  cli.write_stdin("before\n");
  ASSERT_TRUE(cli.wait_stdout("before\n")) << cli.err();
  cli.signal(SIGINT);
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_NE(cli.err().find("closed 1000"), std::string::npos) << cli.err();
}

TEST(CliIntegration, UsageErrorsExitTwoAndHelpExitsZero) {
  {
    CliProcess cli({});
    EXPECT_EQ(cli.wait_exit(), 2);
    EXPECT_NE(cli.err().find("no URL given"), std::string::npos) << cli.err();
  }
  {
    CliProcess cli({"--frob", "ws://127.0.0.1:1/"});
    EXPECT_EQ(cli.wait_exit(), 2);
    EXPECT_NE(cli.err().find("unknown option --frob"), std::string::npos) << cli.err();
  }
  {
    CliProcess cli({"--help"});
    EXPECT_EQ(cli.wait_exit(), 0);
    EXPECT_NE(cli.out().find("usage: parley-cli"), std::string::npos);
  }
}

TEST(CliIntegration, RefusedConnectionGivesUpAfterTheRetries) {
  DeadPort dead;
  CliProcess cli({"--retries", "2", "--retry-delay", "20", "ws://127.0.0.1:" + std::to_string(dead.port) + "/echo"});
  EXPECT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_NE(cli.err().find("(retry 1 of 2)"), std::string::npos) << cli.err();
  EXPECT_NE(cli.err().find("(retry 2 of 2)"), std::string::npos) << cli.err();
  EXPECT_NE(cli.err().find("Connection refused; giving up after 2 retries"), std::string::npos) << cli.err();
  EXPECT_EQ(cli.out(), "");
}

TEST(CliIntegration, RefusedHandshakeIsNotRetried) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({"--retry-delay", "20", url(server, "/no-such-endpoint")});
  EXPECT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_NE(cli.err().find("handshake failed: HTTP 404"), std::string::npos) << cli.err();
  EXPECT_EQ(cli.err().find("reconnecting"), std::string::npos) << cli.err();
}

TEST(CliIntegration, ReconnectsAfterTheServerRestarts) {
  std::optional<ParleydProcess> server(std::in_place);
  ASSERT_TRUE(server->ok()) << server->error();
  const uint16_t port = server->port();
  const std::string target = url(*server, "/echo");
  CliProcess cli({"--retries", "50", "--retry-delay", "20", "--retry-max", "50", target});
  cli.write_stdin("first\n");
  ASSERT_TRUE(cli.wait_stdout("first\n")) << cli.err();
  server.reset();  // SIGTERM: the connection goes away
  ASSERT_TRUE(cli.wait_stderr("reconnecting in")) << cli.err();
  server.emplace(std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(server->ok()) << server->error();
  ASSERT_TRUE(cli.wait_stderr("connected to " + target, 2)) << cli.err();
  cli.write_stdin("second\n");
  ASSERT_TRUE(cli.wait_stdout("second\n")) << cli.err();
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_EQ(cli.out(), "first\nsecond\n");
}

TEST(CliIntegration, ChatBetweenTwoUsers) {
  ParleydProcess server({"--max-text", "16"});
  ASSERT_TRUE(server.ok()) << server.error();
  SKIP_WITHOUT_CHAT(server);
  CliProcess bob({"--chat", "bob", url(server, "/chat")});
  bob.write_stdin("/join lobby\n");
  ASSERT_TRUE(bob.wait_stdout("* history of lobby: 0 messages\n")) << bob.out() << bob.err();

  CliProcess alice({"--chat", "alice", url(server, "/chat")});
  alice.write_stdin(
      "/join lobby\n"
      "hi bob\n"
      "/who\n"
      "/dm bob psst\n"
      "/msg nowhere x\n"
      "this text is longer than sixteen bytes\n"
      "/join bad@room\n"
      "/history lobby 5\n"
      "/quit\n"
      "never sent\n");
  ASSERT_EQ(alice.wait_exit(), 0) << alice.err();
  EXPECT_EQ(alice.out(),
            "* welcome alice\n"
            "* history of lobby: 0 messages\n"
            "* in lobby: bob, alice\n"
            "! error unknown_room: not in that room\n"
            "! error text_too_long: text is 38 bytes, over the limit of 16\n"
            "* history of lobby: 1 message\n"
            "[lobby] alice: hi bob\n")
      << alice.err();
  EXPECT_NE(alice.err().find("! invalid room name \"bad@room\""), std::string::npos) << alice.err();

  ASSERT_TRUE(bob.wait_stdout("* alice left lobby\n")) << bob.out();
  EXPECT_EQ(bob.out(),
            "* welcome bob\n"
            "* history of lobby: 0 messages\n"
            "* alice joined lobby\n"
            "[lobby] alice: hi bob\n"
            "(dm) alice: psst\n"
            "* alice left lobby\n");
  bob.close_stdin();
  EXPECT_EQ(bob.wait_exit(), 0) << bob.err();
}

TEST(CliIntegration, ChatRejoinsItsRoomsAfterAReconnect) {
  std::optional<ParleydProcess> server(std::in_place);
  ASSERT_TRUE(server->ok()) << server->error();
  SKIP_WITHOUT_CHAT(*server);
  const uint16_t port = server->port();
  CliProcess bob({"--chat", "bob", "--retries", "50", "--retry-delay", "20", "--retry-max", "50", url(*server, "/chat")});
  bob.write_stdin("/join lobby\n/join dev\n");
  ASSERT_TRUE(bob.wait_stdout("* history of dev: 0 messages\n")) << bob.out() << bob.err();
  server.reset();
  server.emplace(std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(server->ok()) << server->error();
  // After the reconnect: hello again, then both rooms rejoined (the new server knows nothing).
  ASSERT_TRUE(bob.wait_stdout("* history of dev: 0 messages\n", 2)) << bob.out() << bob.err();
  EXPECT_EQ(bob.out(),
            "* welcome bob\n"
            "* history of lobby: 0 messages\n"
            "* history of dev: 0 messages\n"
            "* welcome bob\n"
            "* history of lobby: 0 messages\n"
            "* history of dev: 0 messages\n");

  CliProcess alice({"-q", "--chat", "alice", url(*server, "/chat")});
  alice.write_stdin("/join dev\n/who\n");
  alice.close_stdin();
  ASSERT_EQ(alice.wait_exit(), 0) << alice.err();
  EXPECT_NE(alice.out().find("* in dev: bob, alice\n"), std::string::npos) << alice.out();
  EXPECT_TRUE(bob.wait_stdout("* alice joined dev\n")) << bob.out();
  // The current room survived the reconnect too: plain text still goes to dev.
  bob.write_stdin("still here\n/history\n");
  bob.close_stdin();
  ASSERT_EQ(bob.wait_exit(), 0) << bob.err();
  EXPECT_NE(bob.out().find("* history of dev: 1 message\n[dev] bob: still here\n"), std::string::npos) << bob.out();
}

// Exactly-once sends across a server crash (issue 14): bob's lines reach a server that is
// stopped and then killed -9 before reading them; after the restart on the same store bob's
// parley-cli resumes (resume_failed: the server forgot the session; plain hello), rejoins with
// since_seq and resends what was never acked, with the same ids. Everyone then sees every message
// once: the history holds a1, b1, b2 exactly once, and alice (who reconnects too) saw each once.
TEST(CliIntegration, ChatResendsUnackedMessagesExactlyOnceAfterTheServerIsKilled) {
  room_log_test::TempDir dir;
  const std::vector<std::string> args{"--store", dir.file("parley.db"), "--resume-window", "120"};
  std::optional<ParleydProcess> server(std::in_place, args);
  ASSERT_TRUE(server->ok()) << server->error();
  const uint16_t port = server->port();
  const std::vector<std::string> retry{"--retries", "100", "--retry-delay", "20", "--retry-max", "100"};
  std::vector<std::string> alice_args{"-q", "--chat", "alice"};
  alice_args.insert(alice_args.end(), retry.begin(), retry.end());
  alice_args.push_back(url(*server, "/chat"));
  CliProcess alice(alice_args);
  alice.write_stdin("/join lobby\n");
  ASSERT_TRUE(alice.wait_stdout("* history of lobby: 0 messages\n")) << alice.out() << alice.err();
  std::vector<std::string> bob_args{"--chat", "bob"};
  bob_args.insert(bob_args.end(), retry.begin(), retry.end());
  bob_args.push_back(url(*server, "/chat"));
  CliProcess bob(bob_args);
  bob.write_stdin("/join lobby\na1\n");
  ASSERT_TRUE(alice.wait_stdout("[lobby] bob: a1\n")) << alice.out() << alice.err();

  // Stopped: bob's next lines sit unread in the server's socket buffer, then die with it.
  ASSERT_EQ(kill(server->pid(), SIGSTOP), 0);
  bob.write_stdin("b1\nb2\n");
  std::this_thread::sleep_for(300ms);  // lets bob write them (either way, each must arrive once)
  ASSERT_EQ(kill(server->pid(), SIGKILL), 0);
  server.reset();
  std::vector<std::string> restart = args;
  restart.insert(restart.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  server.emplace(restart);
  ASSERT_TRUE(server->ok()) << server->error();

  ASSERT_TRUE(alice.wait_stdout("[lobby] bob: b2\n")) << alice.out() << alice.err();
  CliProcess carol({"-q", "--chat", "carol", url(*server, "/chat")});
  carol.write_stdin("/join lobby\n");
  ASSERT_TRUE(carol.wait_stdout("* history of lobby: 3 messages\n")) << carol.out() << carol.err();
  carol.close_stdin();
  ASSERT_EQ(carol.wait_exit(), 0) << carol.err();
  EXPECT_EQ(carol.out(),
            "* welcome carol\n"
            "* history of lobby: 3 messages\n"
            "[lobby] bob: a1\n"
            "[lobby] bob: b1\n"
            "[lobby] bob: b2\n")
      << carol.err();
  for (const char* line : {"[lobby] bob: a1\n", "[lobby] bob: b1\n", "[lobby] bob: b2\n"}) {
    size_t first = alice.out().find(line);
    EXPECT_NE(first, std::string::npos) << line << alice.out();
    EXPECT_EQ(alice.out().find(line, first + 1), std::string::npos) << "twice: " << line << alice.out();
  }
  bob.write_stdin("/quit\n");
  EXPECT_EQ(bob.wait_exit(), 0) << bob.err();
  EXPECT_NE(bob.out().find("! error resume_failed"), std::string::npos) << bob.out();
  EXPECT_EQ(bob.out().find("error unknown_room"), std::string::npos) << bob.out();
  alice.write_stdin("/quit\n");
  EXPECT_EQ(alice.wait_exit(), 0) << alice.err();
}

// wss:// against parleyd serving TLS with a fresh self-signed certificate (subjectAltName
// localhost and 127.0.0.1).
class CliWss : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cert_.ok()) << cert_.error();
    ASSERT_TRUE(server_.ok()) << server_.error();
  }
  std::string wss_url(const char* host = "127.0.0.1") const {
    return std::string("wss://") + host + ":" + std::to_string(server_.port()) + "/echo";
  }

  parley_test::TestCertificate cert_;
  ParleydProcess server_{{"--tls-cert", cert_.cert_path(), "--tls-key", cert_.key_path()}};
};

TEST_F(CliWss, InsecureEchoesALine) {
  CliProcess cli({"--insecure", wss_url()});
  cli.write_stdin("over tls\n");
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 0) << cli.err();
  EXPECT_EQ(cli.out(), "over tls\n");
  EXPECT_NE(cli.err().find("connected to " + wss_url()), std::string::npos) << cli.err();
  EXPECT_NE(cli.err().find("closed 1000"), std::string::npos) << cli.err();
}

TEST_F(CliWss, SelfSignedCertificateIsRefusedWithoutRetrying) {
  CliProcess cli({"--retries", "3", wss_url()});
  cli.write_stdin("never sent\n");
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_EQ(cli.out(), "");
  EXPECT_NE(cli.err().find("certificate verify failed: self-signed certificate"), std::string::npos) << cli.err();
  EXPECT_EQ(cli.err().find("reconnecting"), std::string::npos) << cli.err();  // a verdict, not a glitch
  // One line, naming the server.
  EXPECT_EQ(std::count(cli.err().begin(), cli.err().end(), '\n'), 1) << cli.err();
  EXPECT_NE(cli.err().find("127.0.0.1:" + std::to_string(server_.port())), std::string::npos) << cli.err();
}

TEST_F(CliWss, CaFileOfTheServersCertificateIsTrustedByAddressAndName) {
  for (const char* host : {"127.0.0.1", "localhost"}) {
    CliProcess cli({"--ca-file", cert_.cert_path(), wss_url(host)});
    cli.write_stdin("verified\n");
    cli.close_stdin();
    ASSERT_EQ(cli.wait_exit(), 0) << host << ": " << cli.err();
    EXPECT_EQ(cli.out(), "verified\n") << host;
  }
}

TEST_F(CliWss, CertificateForAnotherAddressIsRefused) {
  // The certificate names localhost and 127.0.0.1, not 127.0.0.2.
  ParleydProcess other({"--listen", "127.0.0.2:0", "--tls-cert", cert_.cert_path(), "--tls-key", cert_.key_path()});
  ASSERT_TRUE(other.ok()) << other.error();
  CliProcess cli({"--ca-file", cert_.cert_path(), "wss://127.0.0.2:" + std::to_string(other.port()) + "/echo"});
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_NE(cli.err().find("certificate verify failed: IP address mismatch"), std::string::npos) << cli.err();
}

TEST_F(CliWss, UnreadableCaFileIsOneClearError) {
  CliProcess cli({"--ca-file", cert_.dir() + "/missing.pem", wss_url()});
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_NE(cli.err().find("cannot read CA file '" + cert_.dir() + "/missing.pem'"), std::string::npos) << cli.err();
}

TEST(CliWssPlainServer, WssToAPlainServerIsRefusedAtOnce) {
  // A ClientHello cannot start an HTTP request: parleyd answers 400 and closes at once (issue
  // 13), so the client fails the TLS handshake rather than waiting out its timeout.
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  CliProcess cli({"--insecure", "--retries", "0", "--connect-timeout", "5000",
                  "wss://127.0.0.1:" + std::to_string(server.port()) + "/echo"});
  cli.close_stdin();
  ASSERT_EQ(cli.wait_exit(), 1) << cli.err();
  EXPECT_NE(cli.err().find("TLS handshake with 127.0.0.1:" + std::to_string(server.port()) + " failed"),
            std::string::npos)
      << cli.err();
}

}  // namespace
