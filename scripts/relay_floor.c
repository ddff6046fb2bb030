/* The floor for any relaying process, for scripts/bench's msgpack section: a minimal
 * Unix-socket forwarder between the benchmark client and a bb, with nothing but the
 * copying (no framing, no parsing). One thread, epoll edge-triggered on readability
 * only (as the shim's relay sockets), one upstream connection per client connection.
 * Small frames only: a write that would block is retried in a loop.
 *
 * usage: relay_floor LISTEN_SOCKET UPSTREAM_SOCKET
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_or_listen(const char *path, int listening) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  int err = listening ? bind(fd, (void *)&addr, sizeof addr) || listen(fd, 64)
                      : connect(fd, (void *)&addr, sizeof addr);
  if (fd < 0 || err) {
    perror(path);
    exit(1);
  }
  return fd;
}

static void watch(int ep, int fd, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
    perror("epoll_ctl");
    exit(1);
  }
}

int main(int argc, char **argv) {
  static int peer[1 << 16];
  static char buf[1 << 16];
  if (argc != 3) {
    fprintf(stderr, "usage: %s LISTEN_SOCKET UPSTREAM_SOCKET\n", argv[0]);
    return 2;
  }
  int listener = connect_or_listen(argv[1], 1), ep = epoll_create1(0);
  watch(ep, listener, EPOLLIN);
  for (;;) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == listener) {
        int client = accept4(listener, 0, 0, SOCK_NONBLOCK);
        if (client < 0 || client >= (1 << 16)) continue;
        int up = connect_or_listen(argv[2], 0);
        peer[client] = up;
        peer[up] = client;
        watch(ep, client, EPOLLIN | EPOLLET);
        watch(ep, up, EPOLLIN | EPOLLET);
        continue;
      }
      for (;;) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
          close(peer[fd]);
          close(fd);
          break;
        }
        if (got < 0) break;
        for (ssize_t off = 0; off < got;) {
          ssize_t put = send(peer[fd], buf + off, got - off, MSG_NOSIGNAL);
          if (put > 0) off += put;
          else if (put < 0 && errno != EAGAIN && errno != EINTR) break;
        }
        if (got < (ssize_t)sizeof buf) break; /* drained: wait for the next edge */
      }
    }
  }
}
