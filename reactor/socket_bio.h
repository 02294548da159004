#pragma once
// An OpenSSL BIO over a connected non-blocking socket, like the one SSL_set_fd makes, except
// that it sends with MSG_NOSIGNAL: a peer that vanished yields EPIPE (a failed write) instead of
// SIGPIPE, so a program embedding parley keeps its own SIGPIPE disposition.
typedef struct bio_st BIO;

namespace reactor {

// A BIO reading and writing `fd`, which it does not close; nullptr when out of memory. Give it
// to SSL_set_bio(ssl, bio, bio), which then owns it.
BIO* new_socket_bio(int fd);

}  // namespace reactor
