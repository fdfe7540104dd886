/*
 * The few /dev/fuse steps Node cannot do itself:
 *   socketpair()            the unix socket fusermount3 passes the /dev/fuse fd back over
 *   recvFd(sock)            receive that fd (SCM_RIGHTS ancillary data)
 *   cloneFd(fd)             FUSE_DEV_IOC_CLONE: a second /dev/fuse fd on the same connection
 *   backingOpen(fd, file)   FUSE_DEV_IOC_BACKING_OPEN: register a file for passthrough (root only)
 *   backingClose(fd, id)    FUSE_DEV_IOC_BACKING_CLOSE
 *   watch(fd, onReady)      O_NONBLOCK, and a libuv poll handle on the event loop's own epoll:
 *                           onReady(status) runs on the main thread whenever the fd is readable
 *                           (status < 0: poll reported an error and the handle stopped)
 *   unwatch(handle)         stops and frees such a handle
 *   readInto(fd, buf)       one non-blocking read(2): bytes read, or -errno (EAGAIN: nothing yet)
 *   reply(fd, unique, error, payload?)
 *                           one writev(2) of a reply: its 16-byte header built here, then the
 *                           payload (a Buffer or none); bytes written, or -errno (never throws)
 *                           A request that came through the io_uring ring is answered through it.
 *   alignedBuffer(size)     a Buffer of `size` bytes whose memory starts on a page boundary
 *                           (freed when the Buffer is collected)
 *   ringStart, ringRegister, ringRead, ringStop   FUSE over io_uring: fuse_ring.c
 * Plain node_api.h (no node-addon-api): built offline against the local Node headers.
 * Every function is synchronous and never blocks: recvFd is called after fusermount3 exited,
 * when the fd (if any) is already queued on the socket.
 *
 * Why watch/readInto: fs.read of /dev/fuse holds a libuv thread-pool thread until a request
 * arrives, then hands it to the main thread (a futex, an eventfd, a wake-up each). /dev/fuse
 * supports poll(2) and O_NONBLOCK, so the main thread can wait for requests in its own epoll and
 * read them itself: no thread hop per request (docs/benchmarks.md, "Small files").
 * Why reply: fs.writeSync/writevSync cost ~1.5 µs of JavaScript per call on the 2-core VM
 * (argument checks, an iovec array, error objects) and the header a Buffer of its own; a
 * GETATTR's whole user time in the daemon is ~10 µs (docs/benchmarks.md, "Reply writes").
 * Why alignedBuffer: O_DIRECT writes need page-aligned memory, and Node gives no buffer's address;
 * the block cache writes fetched blocks to its files with O_DIRECT from such buffers (a buffered
 * write copies every byte into the page cache: the daemon's largest cost on a cold read,
 * docs/benchmarks.md, "Cold reads: cache files written with O_DIRECT").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "fuse_ring.h"

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

/* One watched fd: the poll handle and the JS function it calls. */
struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int stopped;
};

static void watch_closed(uv_handle_t *handle) { free(handle->data); }

static void on_poll(uv_poll_t *poll, int status, int events) {
  (void)events;
  struct watch *w = poll->data;
  if (w->stopped) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value cb, recv, arg;
  /* status < 0: libuv saw POLLERR (the connection ended) and stopped the handle. */
  if (napi_get_reference_value(w->env, w->callback, &cb) == napi_ok && napi_get_global(w->env, &recv) == napi_ok &&
      napi_create_int32(w->env, status, &arg) == napi_ok) {
    /* make_callback: promise jobs the callback queued run before the next event, as after any I/O callback. */
    napi_value ignored;
    napi_status st = napi_make_callback(w->env, w->context, recv, cb, 1, &arg, &ignored);
    if (st == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(w->env, &exc);
      napi_fatal_exception(w->env, exc);
    }
  }
  napi_close_handle_scope(w->env, scope);
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, function)");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return throw_errno(env, errno, "fcntl O_NONBLOCK");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  struct watch *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "watch");
  w->env = env;
  w->poll.data = w;
  napi_value name;
  napi_create_string_utf8(env, "silo:fuse-watch", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok || napi_async_init(env, NULL, name, &w->context) != napi_ok) {
    free(w);
    return NULL;
  }
  int err = uv_poll_init(loop, &w->poll, fd);
  int inited = err == 0;
  if (inited) err = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (err != 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    /* Blocking again: a caller falling back to blocking reads must not spin on EAGAIN. */
    fcntl(fd, F_SETFL, flags);
    /* An initialized handle is freed once the loop has closed it. */
    if (inited) uv_close((uv_handle_t *)&w->poll, watch_closed);
    else free(w);
    return throw_errno(env, -err, "uv_poll");
  }
  napi_value handle;
  napi_create_external(env, w, NULL, NULL, &handle);
  return handle;
}

static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct watch *w;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&w) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected a watch handle");
    return NULL;
  }
  if (w->stopped) return NULL;
  w->stopped = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
  return NULL;
}

static napi_value js_read_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, buffer)");
    return NULL;
  }
  ssize_t n = read(fd, data, len);
  return int_value(env, n < 0 ? -errno : (int32_t)n);
}

/* struct fuse_out_header (linux/fuse.h): len, error (negative errno or 0), unique. */
struct silo_fuse_out_header {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};

static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, error;
  double unique;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &unique) != napi_ok ||
      napi_get_value_int32(env, argv[2], &error) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, unique, error, payload?)");
    return NULL;
  }
  struct silo_fuse_out_header h;
  struct iovec iov[2];
  int n = 1;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  napi_valuetype type = napi_undefined;
  if (argc >= 4 && napi_typeof(env, argv[3], &type) != napi_ok) return NULL;
  if (type != napi_undefined) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, argv[3], &data, &len) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", "expected a Buffer payload");
      return NULL;
    }
    if (len > 0) {
      iov[1].iov_base = data;
      iov[1].iov_len = len;
      n = 2;
    }
  }
  h.len = (uint32_t)(sizeof h + (n == 2 ? iov[1].iov_len : 0));
  h.error = error;
  /* Uniques are below 2^53: a JS number holds them exactly. */
  h.unique = (uint64_t)unique;
  /* A request that came through the ring is answered through it (queued, sent before the loop waits). */
  if (silo_ring_reply(h.unique, error, n == 2 ? iov[1].iov_base : NULL, n == 2 ? iov[1].iov_len : 0)) return int_value(env, (int32_t)h.len);
  ssize_t w = writev(fd, iov, n);
  return int_value(env, w < 0 ? -errno : (int32_t)w);
}

static void free_aligned(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value js_aligned_buffer(napi_env env, napi_callback_info info) {
  int32_t size;
  if (int_arg(env, info, 1, &size) != 0) return NULL;
  if (size <= 0) {
    napi_throw_range_error(env, "EINVAL", "alignedBuffer: size must be positive");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  void *mem;
  int err = posix_memalign(&mem, page > 0 ? (size_t)page : 4096, (size_t)size);
  if (err != 0) return throw_errno(env, err, "posix_memalign");
  napi_value buf;
  if (napi_create_external_buffer(env, (size_t)size, mem, free_aligned, NULL, &buf) != napi_ok) {
    free(mem);
    return NULL;
  }
  return buf;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFd", NULL, js_recv_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cloneFd", NULL, js_clone_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"backingOpen", NULL, js_backing_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"backingClose", NULL, js_backing_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, js_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, js_unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readInto", NULL, js_read_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_enumerable, NULL},
      {"alignedBuffer", NULL, js_aligned_buffer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringStart", NULL, silo_ring_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringRegister", NULL, silo_ring_register, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringRead", NULL, silo_ring_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringStop", NULL, silo_ring_stop, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
