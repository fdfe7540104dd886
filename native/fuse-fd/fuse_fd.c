/*
 * The few /dev/fuse steps Node cannot do itself:
 *   socketpair()            the unix socket fusermount3 passes the /dev/fuse fd back over
 *   recvFd(sock)            receive that fd (SCM_RIGHTS ancillary data)
 *   cloneFd(fd)             FUSE_DEV_IOC_CLONE: a second /dev/fuse fd on the same connection
 *   backingOpen(fd, file)   FUSE_DEV_IOC_BACKING_OPEN: register a file for passthrough (root only)
 *   backingClose(fd, id)    FUSE_DEV_IOC_BACKING_CLOSE
 * Plain node_api.h (no node-addon-api): built offline against the local Node headers.
 * Every function is synchronous and never blocks: recvFd is called after fusermount3 exited,
 * when the fd (if any) is already queued on the socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* From the kernel's uapi <linux/fuse.h> (7.40); Debian's header is older than passthrough. */
struct silo_fuse_backing_map {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
#define SILO_FUSE_DEV_IOC_MAGIC 229
#define SILO_FUSE_DEV_IOC_CLONE _IOR(SILO_FUSE_DEV_IOC_MAGIC, 0, uint32_t)
#define SILO_FUSE_DEV_IOC_BACKING_OPEN _IOW(SILO_FUSE_DEV_IOC_MAGIC, 1, struct silo_fuse_backing_map)
#define SILO_FUSE_DEV_IOC_BACKING_CLOSE _IOW(SILO_FUSE_DEV_IOC_MAGIC, 2, uint32_t)

/* Throws an Error whose .code is the errno's name (EPERM, ...), as Node's own fs errors. */
static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

static int int_arg(napi_env env, napi_callback_info info, size_t n, int32_t *out) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  for (size_t i = 0; i < n; i++) {
    if (i >= argc || napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", "expected integer arguments");
      return -1;
    }
  }
  return 0;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  /* CLOEXEC: the child gets its end through spawn's stdio, which dup2()s it without the flag. */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return throw_errno(env, errno, "socketpair");
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, int_value(env, sv[0]));
  napi_set_element(env, arr, 1, int_value(env, sv[1]));
  return arr;
}

/* Returns the fd, or -1 if the peer closed the socket without sending one. */
static napi_value js_recv_fd(napi_env env, napi_callback_info info) {
  int32_t sock;
  if (int_arg(env, info, 1, &sock) != 0) return NULL;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return int_value(env, -1);
    return throw_errno(env, errno, "recvmsg");
  }
  if (n == 0) return int_value(env, -1);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
      return int_value(env, fd);
    }
  }
  return int_value(env, -1);
}

static napi_value js_clone_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (int_arg(env, info, 1, &fd) != 0) return NULL;
  int clone = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (clone < 0) return throw_errno(env, errno, "open /dev/fuse");
  uint32_t master = (uint32_t)fd;
  if (ioctl(clone, SILO_FUSE_DEV_IOC_CLONE, &master) != 0) {
    int err = errno;
    close(clone);
    return throw_errno(env, err, "ioctl FUSE_DEV_IOC_CLONE");
  }
  return int_value(env, clone);
}

static napi_value js_backing_open(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (int_arg(env, info, 2, a) != 0) return NULL;
  struct silo_fuse_backing_map map = {.fd = a[1], .flags = 0, .padding = 0};
  int id = ioctl(a[0], SILO_FUSE_DEV_IOC_BACKING_OPEN, &map);
  if (id < 0) return throw_errno(env, errno, "ioctl FUSE_DEV_IOC_BACKING_OPEN");
  return int_value(env, id);
}

static napi_value js_backing_close(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_arg(env, info, 2, a) != 0) return NULL;
  uint32_t id = (uint32_t)a[1];
  if (ioctl(a[0], SILO_FUSE_DEV_IOC_BACKING_CLOSE, &id) != 0) return throw_errno(env, errno, "ioctl FUSE_DEV_IOC_BACKING_CLOSE");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFd", NULL, js_recv_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cloneFd", NULL, js_clone_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"backingOpen", NULL, js_backing_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"backingClose", NULL, js_backing_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
