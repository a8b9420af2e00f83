// Linux socket APIs that Swift's Glibc module does not export (PLATFORM.md): epoll, eventfd, accept4.
// No _GNU_SOURCE here: it would change struct layouts that Glibc's module already defines.
#ifndef ZEBRA_SYSTEM_SHIMS_H
#define ZEBRA_SYSTEM_SHIMS_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
#endif
