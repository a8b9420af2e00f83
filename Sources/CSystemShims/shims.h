// Linux socket APIs that Swift's Glibc module does not export (PLATFORM.md): epoll, eventfd, accept4.
#ifndef ZEBRA_SYSTEM_SHIMS_H
#define ZEBRA_SYSTEM_SHIMS_H
#define _GNU_SOURCE 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>

int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int zebra_errno(void) { return errno; }
#endif
