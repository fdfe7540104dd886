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
 *   sendFd(sock, bytes, fd) one sendmsg(2) of `bytes` with `fd` attached (SCM_RIGHTS; fd < 0: none;
 *                           an array: all of them, at most 253, in one message)
 *                           on a connected non-blocking unix socket: bytes sent, or -errno (EAGAIN
 *                           included: the caller drops the connection). Local block reads, server side.
 *   fdRequest(path, bytes, timeoutMs, maxReply, maxFds = 1)
 *                           a Promise, worked on the libuv thread pool: connect to the unix socket
 *                           `path`, send `bytes`, read the reply until the peer closes (at most
 *                           maxReply bytes) and keep the first maxFds fds passed with it (any other
 *                           closed), close the socket; resolves { reply, fds, fd } (fds in the order
 *                           they came; fd: the first, -1: none), rejects (every fd closed) with
 *                           an errno-coded Error (ETIMEDOUT/EAGAIN after timeoutMs without progress).
 *                           Local block reads, client side (docs/architecture.md, "Local block reads").
 *   copyRange(fdIn, offIn, fdOut, offOut, len)
 *                           a Promise, on the thread pool: copy_file_range(2) until `len` bytes are
 *                           copied or the source ends; resolves the count, rejects with an
 *                           errno-coded Error (EXDEV, ENOSYS, EINVAL: the caller copies by hand).
 *                           The bytes never enter the process (`silo volume get` of local blocks).
 *   spliceReply(fuseFd, unique, fileFd, offset, len)
 *                           a Promise, on the thread pool: a READ reply of `len` bytes of `fileFd` at
 *                           `offset` spliced to /dev/fuse (header into a per-thread pipe, the file's
 *                           pages after it, the pipe to /dev/fuse: one copy per byte); resolves `len`
 *                           once sent, or minus the errno the kernel refused it with (ENOENT: the
 *                           request was interrupted); rejects with an errno-coded Error when nothing
 *                           was sent (ENODATA: the file is shorter; EPERM: no pipe that large; EINVAL:
 *                           not spliceable): the caller answers by copying.
 *   willNeed(fd, offset, len)
 *                           a Promise, on the thread pool: posix_fadvise(POSIX_FADV_WILLNEED) (the
 *                           block cache's read-ahead of a spliced block); resolves 0 or the errno.
 *   fdPutRequest(path, bytes, fd, timeoutMs, maxReply)
 *                           fdRequest whose request carries `fd` (SCM_RIGHTS, on its first sendmsg):
 *                           local block writes, client side (a `volume put` passes its source file).
 *   recvRequest(sock, maxBytes, timeoutMs)
 *                           a Promise, worked on the libuv thread pool: reads one request line from
 *                           the connected (non-blocking) unix socket `sock` (poll + recvmsg), until
 *                           its newline, `maxBytes` or the peer's close, keeping the first fd passed
 *                           with it (any other closed); resolves { request, fd, complete } (complete:
 *                           the newline came; request excludes it). Local block writes, server side:
 *                           Node's own reads of a socket drop the fds passed on it, so the server's
 *                           net.Server for that socket never reads (pauseOnConnect) and this does.
 *   readHashed(fd, buf, position)
 *                           a Promise, on the thread pool: fills `buf` from `fd` at `position` with
 *                           pread(2)s of at most 1 MiB, each chunk hashed (SHA-256, the OpenSSL Node
 *                           ships) right after its read, while it is still in the CPU cache; resolves
 *                           the 32-byte digest of `buf`'s bytes, or undefined if the file ended before
 *                           `buf` was full; rejects with an errno-coded Error. `buf` must not be
 *                           touched until it settles. Local block writes, server side: the hashing
 *                           leaves the event loop, and two requests hash on two cores.
 *   syncAll(fds, dataOnly)  a Promise, on the thread pool: fsync(2) (fdatasync with dataOnly) of every fd
 *                           of `fds` (an array of at most 64) at once, each on a thread of its own;
 *                           resolves once all returned, or rejects with the first failure's
 *                           errno-coded Error (in the order of `fds`; every sync still ran). Why:
 *                           syncs issued together wait for one journal commit and one disk cache
 *                           flush; queued on libuv's 4 threads, each sync that finds its transaction
 *                           already committed sends a flush of its own (ext4), ~30 per group of 16
 *                           blobs (docs/benchmarks.md, "Local block writes with O_DIRECT").
 * Plain node_api.h (no node-addon-api): built offline against the local Node headers.
 * Every function but fdRequest, copyRange, spliceReply, willNeed, fdPutRequest, recvRequest, readHashed and syncAll (thread pool) is synchronous
 * and never blocks: recvFd is called after fusermount3 exited,
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/evp.h>

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

/* Most fds one sendmsg may carry (the kernel's SCM_MAX_FD). */
#define SEND_MAX_FDS 253

/*
 * sendFd(sock, bytes, fd): one sendmsg; never blocks (the socket is non-blocking: a full buffer is
 * -EAGAIN). `fd` is one fd (< 0: none) or an array of up to SEND_MAX_FDS fds, all in one SCM_RIGHTS.
 */
static napi_value js_send_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t sock;
  void *data;
  size_t len;
  int fds[SEND_MAX_FDS];
  uint32_t nfds = 0;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len == 0 ||
      napi_is_array(env, argv[2], &is_array) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (socket fd, non-empty buffer, fd or fds)");
    return NULL;
  }
  if (is_array) {
    if (napi_get_array_length(env, argv[2], &nfds) != napi_ok || nfds > SEND_MAX_FDS) {
      napi_throw_type_error(env, "EINVAL", "at most 253 fds");
      return NULL;
    }
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value v;
      int32_t fd;
      if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok || fd < 0) {
        napi_throw_type_error(env, "EINVAL", "fds must be open fds (>= 0)");
        return NULL;
      }
      fds[i] = fd;
    }
  } else {
    int32_t fd;
    if (napi_get_value_int32(env, argv[2], &fd) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", "expected (socket fd, non-empty buffer, fd or fds)");
      return NULL;
    }
    if (fd >= 0) fds[nfds++] = fd;
  }
  struct iovec iov = {.iov_base = data, .iov_len = len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(SEND_MAX_FDS * sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(&control, 0, CMSG_SPACE(nfds * sizeof(int)));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return int_value(env, n < 0 ? -errno : (int32_t)n);
}

/* Most fds one recvmsg's control message is read with (SCM_MAX_FD): every fd passed is seen, kept or closed. */
#define FD_REQUEST_MAX_FDS SEND_MAX_FDS

struct fd_request {
  napi_async_work work;
  napi_deferred deferred;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char *request;
  size_t request_len;
  char *reply;
  size_t reply_cap;
  size_t reply_len;
  int32_t timeout_ms;
  /* The fds kept, in the order they came (at most max_fds; any further one is closed). */
  int fds[FD_REQUEST_MAX_FDS];
  int nfds;
  int max_fds;
  int err;
  const char *step;
  /* fdPutRequest: the fd sent with the request's first sendmsg (only when pass_fd_set). */
  int pass_fd;
  int pass_fd_set;
};

/* Keeps the fds of the SCM_RIGHTS messages in `msg` up to the request's max_fds, closing any further one. */
static void take_fds(struct fd_request *r, struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (r->nfds < r->max_fds) r->fds[r->nfds++] = fd;
      else close(fd);
    }
  }
}

/* One blocking sendmsg of (part of) `data` with `fd` attached as SCM_RIGHTS; the bytes sent, or -1 (errno set). */
static ssize_t send_with_fd(int sock, const char *data, size_t len, int fd) {
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

/* On a thread-pool thread: the blocking steps, each bounded by the socket's send/receive timeouts. */
static void fd_request_execute(napi_env env, void *data) {
  (void)env;
  struct fd_request *r = data;
  r->nfds = 0;
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    r->err = errno;
    r->step = "socket";
    return;
  }
  struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, r->path, sizeof addr.sun_path);
  int rc;
  do rc = connect(sock, (struct sockaddr *)&addr, sizeof addr);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    r->err = errno;
    r->step = "connect";
    goto out;
  }
  size_t first = 0;
  if (r->pass_fd_set) {
    ssize_t n = send_with_fd(sock, r->request, r->request_len, r->pass_fd);
    if (n < 0) {
      r->err = errno;
      r->step = "sendmsg";
      goto out;
    }
    first = (size_t)n;
  }
  for (size_t sent = first; sent < r->request_len;) {
    ssize_t n = send(sock, r->request + sent, r->request_len - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r->err = errno;
      r->step = "send";
      goto out;
    }
    sent += (size_t)n;
  }
  for (;;) {
    if (r->reply_len == r->reply_cap) {
      r->err = EMSGSIZE;
      r->step = "recvmsg";
      goto out;
    }
    struct iovec iov = {.iov_base = r->reply + r->reply_len, .iov_len = r->reply_cap - r->reply_len};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(FD_REQUEST_MAX_FDS * sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r->err = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
      r->step = "recvmsg";
      goto out;
    }
    take_fds(r, &msg);
    if (n == 0) break;
    r->reply_len += (size_t)n;
  }
out:
  if (r->err != 0) {
    for (int i = 0; i < r->nfds; i++) close(r->fds[i]);
    r->nfds = 0;
  }
  close(sock);
}

static void fd_request_complete(napi_env env, napi_status status, void *data) {
  struct fd_request *r = data;
  if (status != napi_ok && r->err == 0) {
    r->err = ECANCELED;
    r->step = "fdRequest";
  }
  if (r->err != 0) {
    char msg[256];
    const char *name = strerrorname_np(r->err);
    snprintf(msg, sizeof msg, "%s: %s", r->step, strerror(r->err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, r->deferred, error);
  } else {
    napi_value result, reply, fd, fds;
    void *copy;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, r->reply_len, r->reply, &copy, &reply);
    napi_create_int32(env, r->nfds > 0 ? r->fds[0] : -1, &fd);
    napi_create_array_with_length(env, (size_t)r->nfds, &fds);
    for (int i = 0; i < r->nfds; i++) {
      napi_value v;
      napi_create_int32(env, r->fds[i], &v);
      napi_set_element(env, fds, (uint32_t)i, v);
    }
    napi_set_named_property(env, result, "reply", reply);
    napi_set_named_property(env, result, "fd", fd);
    napi_set_named_property(env, result, "fds", fds);
    napi_resolve_deferred(env, r->deferred, result);
  }
  napi_delete_async_work(env, r->work);
  free(r->request);
  free(r->reply);
  free(r);
}

/*
 * Starts an fdRequest (path argument `path_arg`, request bytes `bytes_arg`), passing `pass_fd`
 * along with the request if >= 0 (fdPutRequest); `what` names the call in errors.
 */
static napi_value fd_request_start(napi_env env, napi_value path_arg, napi_value bytes_arg, int32_t pass_fd, int32_t timeout_ms,
                                   int32_t max_reply, int32_t max_fds, const char *what) {
  size_t path_len;
  void *data;
  size_t len;
  if (napi_get_value_string_utf8(env, path_arg, NULL, 0, &path_len) != napi_ok || napi_get_buffer_info(env, bytes_arg, &data, &len) != napi_ok ||
      len == 0 || timeout_ms <= 0 || max_reply <= 0 || max_fds < 0 || max_fds > FD_REQUEST_MAX_FDS) {
    napi_throw_type_error(env, "EINVAL", "expected (path, non-empty buffer, ..., timeoutMs > 0, maxReply > 0, 0 <= maxFds <= 253)");
    return NULL;
  }
  struct fd_request *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, ENOMEM, what);
  /* sun_path holds the path and its NUL; a longer one would be cut, not the one asked for. */
  if (path_len == 0 || path_len >= sizeof r->path) {
    free(r);
    return throw_errno(env, ENAMETOOLONG, what);
  }
  napi_get_value_string_utf8(env, path_arg, r->path, sizeof r->path, &path_len);
  r->request = malloc(len);
  r->reply = malloc((size_t)max_reply);
  if (!r->request || !r->reply) {
    free(r->request);
    free(r->reply);
    free(r);
    return throw_errno(env, ENOMEM, what);
  }
  memcpy(r->request, data, len);
  r->request_len = len;
  r->reply_cap = (size_t)max_reply;
  r->timeout_ms = timeout_ms;
  r->max_fds = max_fds;
  if (pass_fd >= 0) {
    /* The caller keeps its fd open until the promise settles; the kernel dups it into the message. */
    r->pass_fd = pass_fd;
    r->pass_fd_set = 1;
  }
  napi_value promise, name;
  napi_create_promise(env, &r->deferred, &promise);
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, fd_request_execute, fd_request_complete, r, &r->work) != napi_ok ||
      napi_queue_async_work(env, r->work) != napi_ok) {
    free(r->request);
    free(r->reply);
    free(r);
    napi_throw_error(env, "EIO", "could not queue the work");
    return NULL;
  }
  return promise;
}

/* fdRequest(path, bytes, timeoutMs, maxReply, maxFds = 1) */
static napi_value js_fd_request(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t timeout_ms, max_reply, max_fds = 1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 4 || napi_get_value_int32(env, argv[2], &timeout_ms) != napi_ok || napi_get_value_int32(env, argv[3], &max_reply) != napi_ok ||
      (argc >= 5 && napi_get_value_int32(env, argv[4], &max_fds) != napi_ok)) {
    napi_throw_type_error(env, "EINVAL", "expected (path, buffer, timeoutMs > 0, maxReply > 0, maxFds?)");
    return NULL;
  }
  return fd_request_start(env, argv[0], argv[1], -1, timeout_ms, max_reply, max_fds, "fdRequest");
}

struct copy_range {
  napi_async_work work;
  napi_deferred deferred;
  int fd_in, fd_out;
  int64_t off_in, off_out, len, copied;
  int err;
};

static void copy_range_execute(napi_env env, void *data) {
  (void)env;
  struct copy_range *c = data;
  loff_t in = c->off_in, out = c->off_out;
  while (c->copied < c->len) {
    ssize_t n = copy_file_range(c->fd_in, &in, c->fd_out, &out, (size_t)(c->len - c->copied), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      c->err = errno;
      return;
    }
    if (n == 0) return;
    c->copied += n;
  }
}

static void copy_range_complete(napi_env env, napi_status status, void *data) {
  struct copy_range *c = data;
  if (status != napi_ok && c->err == 0) c->err = ECANCELED;
  if (c->err != 0) {
    char msg[256];
    const char *name = strerrorname_np(c->err);
    snprintf(msg, sizeof msg, "copy_file_range: %s", strerror(c->err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, c->deferred, error);
  } else {
    napi_value v;
    napi_create_int64(env, c->copied, &v);
    napi_resolve_deferred(env, c->deferred, v);
  }
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value js_copy_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd_in, fd_out;
  int64_t off_in, off_out, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd_in) != napi_ok || napi_get_value_int64(env, argv[1], &off_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &fd_out) != napi_ok || napi_get_value_int64(env, argv[3], &off_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &len) != napi_ok || off_in < 0 || off_out < 0 || len < 0) {
    napi_throw_type_error(env, "EINVAL", "expected (fdIn, offIn >= 0, fdOut, offOut >= 0, len >= 0)");
    return NULL;
  }
  struct copy_range *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, ENOMEM, "copyRange");
  c->fd_in = fd_in;
  c->fd_out = fd_out;
  c->off_in = off_in;
  c->off_out = off_out;
  c->len = len;
  napi_value promise, name;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_string_utf8(env, "silo:copy-range", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, copy_range_execute, copy_range_complete, c, &c->work) != napi_ok ||
      napi_queue_async_work(env, c->work) != napi_ok) {
    free(c);
    napi_throw_error(env, "EIO", "copyRange: could not queue the work");
    return NULL;
  }
  return promise;
}

/* readHashed(fd, buf, position): see the top of this file. */
#define READ_HASHED_CHUNK (1024 * 1024)

struct read_hashed {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf_ref; /* keeps `buf` alive while the pool reads into it */
  int fd;
  uint8_t *buf;
  size_t len;
  int64_t position;
  int short_read; /* the file ended before buf was full */
  int err;        /* an errno; EPROTO: OpenSSL failed */
  unsigned char digest[32];
};

static void read_hashed_execute(napi_env env, void *data) {
  (void)env;
  struct read_hashed *r = data;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    r->err = EPROTO;
    EVP_MD_CTX_free(ctx);
    return;
  }
  size_t done = 0;
  while (done < r->len) {
    size_t want = r->len - done < READ_HASHED_CHUNK ? r->len - done : READ_HASHED_CHUNK;
    ssize_t n = pread(r->fd, r->buf + done, want, (off_t)(r->position + (int64_t)done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r->err = errno;
      break;
    }
    if (n == 0) {
      r->short_read = 1;
      break;
    }
    if (EVP_DigestUpdate(ctx, r->buf + done, (size_t)n) != 1) {
      r->err = EPROTO;
      break;
    }
    done += (size_t)n;
  }
  unsigned int out = 0;
  if (r->err == 0 && !r->short_read && (EVP_DigestFinal_ex(ctx, r->digest, &out) != 1 || out != sizeof r->digest)) r->err = EPROTO;
  EVP_MD_CTX_free(ctx);
}

static void read_hashed_complete(napi_env env, napi_status status, void *data) {
  struct read_hashed *r = data;
  if (status != napi_ok && r->err == 0) r->err = ECANCELED;
  if (r->err != 0) {
    char msg[256];
    const char *name = strerrorname_np(r->err);
    snprintf(msg, sizeof msg, "readHashed: %s", r->err == EPROTO ? "SHA-256 failed" : strerror(r->err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, r->deferred, error);
  } else if (r->short_read) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, r->deferred, undef);
  } else {
    napi_value digest;
    napi_create_buffer_copy(env, sizeof r->digest, r->digest, NULL, &digest);
    napi_resolve_deferred(env, r->deferred, digest);
  }
  napi_delete_reference(env, r->buf_ref);
  napi_delete_async_work(env, r->work);
  free(r);
}

static napi_value js_read_hashed(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t position;
  bool is_buffer = false;
  void *buf = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &buf, &len) != napi_ok || napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, buf: Buffer, position >= 0)");
    return NULL;
  }
  struct read_hashed *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, ENOMEM, "readHashed");
  r->fd = fd;
  r->buf = buf;
  r->len = len;
  r->position = position;
  napi_value promise, name;
  if (napi_create_reference(env, argv[1], 1, &r->buf_ref) != napi_ok) {
    free(r);
    return NULL;
  }
  napi_create_promise(env, &r->deferred, &promise);
  napi_create_string_utf8(env, "silo:read-hashed", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, read_hashed_execute, read_hashed_complete, r, &r->work) != napi_ok ||
      napi_queue_async_work(env, r->work) != napi_ok) {
    napi_delete_reference(env, r->buf_ref);
    free(r);
    napi_throw_error(env, "EIO", "readHashed: could not queue the work");
    return NULL;
  }
  return promise;
}

/* syncAll(fds, dataOnly): see the top of this file. */
#define SYNC_ALL_MAX 64

struct sync_one {
  pthread_t thread;
  int fd, data_only, err, started;
};

struct sync_all {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t n;
  struct sync_one each[SYNC_ALL_MAX];
};

static void *sync_one_run(void *arg) {
  struct sync_one *o = arg;
  int r;
  do r = o->data_only ? fdatasync(o->fd) : fsync(o->fd);
  while (r < 0 && errno == EINTR);
  o->err = r < 0 ? errno : 0;
  return NULL;
}

static void sync_all_execute(napi_env env, void *data) {
  (void)env;
  struct sync_all *a = data;
  for (uint32_t i = 0; i < a->n; i++) a->each[i].started = pthread_create(&a->each[i].thread, NULL, sync_one_run, &a->each[i]) == 0;
  /* A thread that could not start: its sync runs here (later than the others, still done). */
  for (uint32_t i = 0; i < a->n; i++)
    if (a->each[i].started) pthread_join(a->each[i].thread, NULL);
    else sync_one_run(&a->each[i]);
}

static void sync_all_complete(napi_env env, napi_status status, void *data) {
  struct sync_all *a = data;
  int err = status != napi_ok ? ECANCELED : 0;
  for (uint32_t i = 0; i < a->n && err == 0; i++) err = a->each[i].err;
  if (err != 0) {
    char msg[256];
    const char *name = strerrorname_np(err);
    snprintf(msg, sizeof msg, "syncAll: %s", strerror(err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, a->deferred, error);
  } else {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, a->deferred, undef);
  }
  napi_delete_async_work(env, a->work);
  free(a);
}

static napi_value js_sync_all(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool is_array = false, data_only = false;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok ||
      n > SYNC_ALL_MAX || napi_get_value_bool(env, argv[1], &data_only) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (fds: number[] of at most 64, dataOnly: boolean)");
    return NULL;
  }
  struct sync_all *a = calloc(1, sizeof *a);
  if (!a) return throw_errno(env, ENOMEM, "syncAll");
  a->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    int32_t fd;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok || fd < 0) {
      free(a);
      napi_throw_type_error(env, "EINVAL", "syncAll: every fd must be a non-negative integer");
      return NULL;
    }
    a->each[i].fd = fd;
    a->each[i].data_only = data_only;
  }
  napi_value promise, name;
  napi_create_promise(env, &a->deferred, &promise);
  napi_create_string_utf8(env, "silo:sync-all", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, sync_all_execute, sync_all_complete, a, &a->work) != napi_ok ||
      napi_queue_async_work(env, a->work) != napi_ok) {
    free(a);
    napi_throw_error(env, "EIO", "syncAll: could not queue the work");
    return NULL;
  }
  return promise;
}

/*
 * spliceReply: a READ reply whose payload is `len` bytes of an open file, spliced (libfuse's
 * FUSE_CAP_SPLICE_WRITE): the header is written into a pipe, the file's pages are spliced in
 * after it (page references, no copy) and the pipe is spliced to /dev/fuse, where the kernel
 * copies the bytes into the request's pages: one copy per byte instead of pread's and writev's.
 * Each thread-pool thread keeps a pipe of its own, grown to hold a whole reply (fuse_dev_splice_write
 * takes a reply only whole, and a 1 MiB payload at an unaligned offset spans 258 pipe slots).
 */
static __thread int splice_pipe[2] = {-1, -1};
static __thread long splice_pipe_size;

static void splice_pipe_reset(void) {
  if (splice_pipe[0] >= 0) close(splice_pipe[0]);
  if (splice_pipe[1] >= 0) close(splice_pipe[1]);
  splice_pipe[0] = splice_pipe[1] = -1;
  splice_pipe_size = 0;
}

/* A pipe of this thread's with a slot (a page) for the header and one for each page the payload
   (`len` bytes at file offset `off`) touches: 0 or an errno. */
static int splice_pipe_for(int64_t off, uint32_t len) {
  long page = 4096;
  long need = ((long)(off % page + len + page - 1) / page + 1) * page;
  if (splice_pipe[0] < 0 && pipe2(splice_pipe, O_CLOEXEC) != 0) {
    splice_pipe[0] = splice_pipe[1] = -1;
    return errno;
  }
  if (splice_pipe_size >= need) return 0;
  /* Above /proc/sys/fs/pipe-max-size only with CAP_SYS_RESOURCE (EPERM otherwise): the caller copies. */
  long got = fcntl(splice_pipe[1], F_SETPIPE_SZ, need);
  if (got < 0) return errno;
  splice_pipe_size = got;
  return 0;
}

struct splice_reply {
  napi_async_work work;
  napi_deferred deferred;
  int fuse_fd, file_fd;
  int64_t off;
  uint32_t len;
  uint64_t unique;
  /* sent: the reply went to /dev/fuse (result: its payload length or minus the errno the kernel answered). */
  int sent;
  int64_t result;
  /* Nothing was sent: the errno for the caller's copy path (ENODATA: the file holds fewer bytes). */
  int err;
};

static void splice_reply_execute(napi_env env, void *data) {
  (void)env;
  struct splice_reply *c = data;
  struct silo_fuse_out_header h = {.len = (uint32_t)sizeof h + c->len, .error = 0, .unique = c->unique};
  int err = splice_pipe_for(c->off, c->len);
  if (err != 0) {
    c->err = err;
    return;
  }
  /* The pipe is empty here (every path below leaves it so, or resets it). */
  if (write(splice_pipe[1], &h, sizeof h) != (ssize_t)sizeof h) {
    c->err = errno ? errno : EIO;
    splice_pipe_reset();
    return;
  }
  loff_t off = c->off;
  uint32_t got = 0;
  while (got < c->len) {
    ssize_t n = splice(c->file_fd, &off, splice_pipe[1], NULL, c->len - got, SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      /* A file shorter than asked (n == 0), or one that cannot be spliced: the header announced
         bytes that are not there, so nothing is sent and the pipe starts afresh. */
      c->err = n == 0 ? ENODATA : errno;
      splice_pipe_reset();
      return;
    }
    got += (uint32_t)n;
  }
  ssize_t w;
  do w = splice(splice_pipe[0], NULL, c->fuse_fd, NULL, sizeof h + c->len, SPLICE_F_MOVE);
  while (w < 0 && errno == EINTR);
  c->sent = 1;
  c->result = w < 0 ? -errno : (int64_t)c->len;
  /* fuse_dev_splice_write consumes the whole reply even when it refuses it (ENOENT: interrupted);
     anything left (it refused before taking it) must not precede the next reply. */
  int left = 0;
  if (w < 0 && (ioctl(splice_pipe[0], FIONREAD, &left) != 0 || left > 0)) {
    splice_pipe_reset();
    /* Not taken: the request may still wait for an answer, so the caller copies it. */
    if (left > 0) {
      c->sent = 0;
      c->err = -(int)c->result;
    }
  }
}

static void splice_reply_complete(napi_env env, napi_status status, void *data) {
  struct splice_reply *c = data;
  if (status != napi_ok && !c->sent && c->err == 0) c->err = ECANCELED;
  if (!c->sent) {
    const char *name = strerrorname_np(c->err);
    char msg[256];
    snprintf(msg, sizeof msg, "splice: %s", strerror(c->err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, c->deferred, error);
  } else {
    napi_value v;
    napi_create_int64(env, c->result, &v);
    napi_resolve_deferred(env, c->deferred, v);
  }
  napi_delete_async_work(env, c->work);
  free(c);
}

/* spliceReply(fuseFd, unique, fileFd, offset, len): a Promise, on the thread pool (see above). */
static napi_value js_splice_reply(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fuse_fd, file_fd, len;
  double unique;
  int64_t off;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fuse_fd) != napi_ok || napi_get_value_double(env, argv[1], &unique) != napi_ok ||
      napi_get_value_int32(env, argv[2], &file_fd) != napi_ok || napi_get_value_int64(env, argv[3], &off) != napi_ok ||
      napi_get_value_int32(env, argv[4], &len) != napi_ok || off < 0 || len < 0 || len > (1 << 24)) {
    napi_throw_type_error(env, "EINVAL", "expected (fuseFd, unique, fileFd, offset >= 0, 0 <= len <= 16 MiB)");
    return NULL;
  }
  struct splice_reply *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, ENOMEM, "spliceReply");
  c->fuse_fd = fuse_fd;
  c->file_fd = file_fd;
  c->off = off;
  c->len = (uint32_t)len;
  c->unique = (uint64_t)unique;
  napi_value promise, name;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_string_utf8(env, "silo:splice-reply", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, splice_reply_execute, splice_reply_complete, c, &c->work) != napi_ok ||
      napi_queue_async_work(env, c->work) != napi_ok) {
    free(c);
    napi_throw_error(env, "EIO", "spliceReply: could not queue the work");
    return NULL;
  }
  return promise;
}

/* willNeed(fd, offset, len): posix_fadvise(POSIX_FADV_WILLNEED) on the thread pool (starting the
   reads may wait for the disk's queue); resolves 0 or the errno (advice: never fails the caller). */
struct will_need {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t off, len;
  int err;
};

static void will_need_execute(napi_env env, void *data) {
  (void)env;
  struct will_need *c = data;
  c->err = posix_fadvise(c->fd, c->off, c->len, POSIX_FADV_WILLNEED);
}

static void will_need_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  struct will_need *c = data;
  napi_value v;
  napi_create_int32(env, c->err, &v);
  napi_resolve_deferred(env, c->deferred, v);
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value js_will_need(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t off, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &off) != napi_ok ||
      napi_get_value_int64(env, argv[2], &len) != napi_ok || off < 0 || len < 0) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, offset >= 0, len >= 0)");
    return NULL;
  }
  struct will_need *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, ENOMEM, "willNeed");
  c->fd = fd;
  c->off = off;
  c->len = len;
  napi_value promise, name;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_string_utf8(env, "silo:will-need", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, will_need_execute, will_need_complete, c, &c->work) != napi_ok ||
      napi_queue_async_work(env, c->work) != napi_ok) {
    free(c);
    napi_throw_error(env, "EIO", "willNeed: could not queue the work");
    return NULL;
  }
  return promise;
}

/* fdPutRequest(path, bytes, fd, timeoutMs, maxReply): fdRequest with `fd` passed along with the request. */
static napi_value js_fd_put_request(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t pass_fd, timeout_ms, max_reply;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5 || napi_get_value_int32(env, argv[2], &pass_fd) != napi_ok || napi_get_value_int32(env, argv[3], &timeout_ms) != napi_ok ||
      napi_get_value_int32(env, argv[4], &max_reply) != napi_ok || pass_fd < 0) {
    napi_throw_type_error(env, "EINVAL", "expected (path, non-empty buffer, fd >= 0, timeoutMs > 0, maxReply > 0)");
    return NULL;
  }
  return fd_request_start(env, argv[0], argv[1], pass_fd, timeout_ms, max_reply, 1, "fdPutRequest");
}

struct recv_request {
  napi_async_work work;
  napi_deferred deferred;
  int sock;
  char *buf;
  size_t max;
  size_t len;
  int32_t timeout_ms;
  int fd;
  int complete;
  int err;
  const char *step;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On a thread-pool thread: poll + recvmsg until the newline, max bytes, the peer's close or the deadline. */
static void recv_request_execute(napi_env env, void *data) {
  (void)env;
  struct recv_request *r = data;
  r->fd = -1;
  int64_t deadline = now_ms() + r->timeout_ms;
  /* One byte past max: a request of exactly max bytes still shows its newline. */
  while (r->len <= r->max) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      r->err = ETIMEDOUT;
      r->step = "recvRequest";
      break;
    }
    struct pollfd p = {.fd = r->sock, .events = POLLIN};
    int rc = poll(&p, 1, (int)left);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      r->err = errno;
      r->step = "poll";
      break;
    }
    if (rc == 0) continue;
    struct iovec iov = {.iov_base = r->buf + r->len, .iov_len = r->max + 1 - r->len};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(FD_REQUEST_MAX_FDS * sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(r->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) {
      r->err = errno;
      r->step = "recvmsg";
      break;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (r->fd < 0) r->fd = fd;
        else close(fd);
      }
    }
    if (n == 0) break;
    char *nl = memchr(r->buf + r->len, '\n', (size_t)n);
    if (nl) {
      r->len = (size_t)(nl - r->buf);
      r->complete = 1;
      break;
    }
    r->len += (size_t)n;
  }
  if (r->len > r->max) r->len = r->max;
  if (r->err != 0 && r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
}

static void recv_request_complete(napi_env env, napi_status status, void *data) {
  struct recv_request *r = data;
  if (status != napi_ok && r->err == 0) {
    r->err = ECANCELED;
    r->step = "recvRequest";
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
  }
  if (r->err != 0) {
    char msg[256];
    const char *name = strerrorname_np(r->err);
    snprintf(msg, sizeof msg, "%s: %s", r->step, strerror(r->err));
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, r->deferred, error);
  } else {
    napi_value result, request, fd, complete;
    void *copy;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, r->len, r->buf, &copy, &request);
    napi_create_int32(env, r->fd, &fd);
    napi_get_boolean(env, r->complete != 0, &complete);
    napi_set_named_property(env, result, "request", request);
    napi_set_named_property(env, result, "fd", fd);
    napi_set_named_property(env, result, "complete", complete);
    napi_resolve_deferred(env, r->deferred, result);
  }
  napi_delete_async_work(env, r->work);
  free(r->buf);
  free(r);
}

/* recvRequest(sock, maxBytes, timeoutMs): see the header. The caller must not close `sock` before it settles. */
static napi_value js_recv_request(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (int_arg(env, info, 3, a) != 0) return NULL;
  if (a[0] < 0 || a[1] <= 0 || a[2] <= 0) {
    napi_throw_type_error(env, "EINVAL", "expected (socket fd, maxBytes > 0, timeoutMs > 0)");
    return NULL;
  }
  struct recv_request *r = calloc(1, sizeof *r);
  if (r) r->buf = malloc((size_t)a[1] + 1);
  if (!r || !r->buf) {
    if (r) free(r);
    return throw_errno(env, ENOMEM, "recvRequest");
  }
  r->sock = a[0];
  r->max = (size_t)a[1];
  r->timeout_ms = a[2];
  napi_value promise, name;
  napi_create_promise(env, &r->deferred, &promise);
  napi_create_string_utf8(env, "silo:recv-request", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, recv_request_execute, recv_request_complete, r, &r->work) != napi_ok ||
      napi_queue_async_work(env, r->work) != napi_ok) {
    free(r->buf);
    free(r);
    napi_throw_error(env, "EIO", "recvRequest: could not queue the work");
    return NULL;
  }
  return promise;
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
      {"sendFd", NULL, js_send_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdRequest", NULL, js_fd_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyRange", NULL, js_copy_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spliceReply", NULL, js_splice_reply, NULL, NULL, NULL, napi_enumerable, NULL},
      {"willNeed", NULL, js_will_need, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdPutRequest", NULL, js_fd_put_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvRequest", NULL, js_recv_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readHashed", NULL, js_read_hashed, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncAll", NULL, js_sync_all, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringStart", NULL, silo_ring_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringRegister", NULL, silo_ring_register, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringRead", NULL, silo_ring_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringStop", NULL, silo_ring_stop, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
