/*
 * FUSE over io_uring (kernel 6.14+, CONFIG_FUSE_IO_URING, /sys/module/fuse/parameters/enable_uring):
 * requests arrive as completions of IORING_OP_URING_CMD commands on the /dev/fuse fd, and a reply
 * is written into the entry's buffers and handed back with COMMIT_AND_FETCH, which also arms the
 * entry for the next request. One ring for all the kernel's queues (one per possible CPU, each of
 * which must have an entry registered before the kernel uses the ring), served on the main thread:
 *   ringStart(fd, depth, onReady)  registers depth entries per queue; onReady() runs on the main
 *                                  thread when completions may be waiting (an eventfd in libuv's epoll)
 *   ringRead(buf)                  the next request, copied into buf in /dev/fuse's layout (so the
 *                                  session decodes it as any other): its length, 0 if none is
 *                                  waiting, or -errno (the kernel stopped the ring: ENOTCONN, ...)
 *   ringReply(unique, error, payload?)  1 if `unique` came from the ring (the reply is queued and
 *                                  submitted before the loop next waits), 0 if not (write it to /dev/fuse)
 *   ringStop()                     stops and frees the ring
 * The eventfd registered with the ring tells the loop that completions were posted.
 * Notifications, FORGET and INTERRUPT stay on /dev/fuse (the kernel sends those there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "fuse_ring.h"

/* From the kernel's uapi <linux/fuse.h> (7.42); Debian's header predates it. */
struct ring_in_out {
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct ring_req_header {
  char in_out[128];
  char op_in[128];
  struct ring_in_out ent;
};
struct ring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
#define CMD_REGISTER 1
#define CMD_COMMIT_AND_FETCH 2
#define IN_HEADER 40
#define OUT_HEADER 16
/* Requests served per wake-up before the loop gets a turn. */
#define READS_PER_WAKEUP 64

struct entry {
  struct ring_req_header *hdr;
  char *payload;
  struct iovec iov[2];
  uint64_t unique; /* the request it holds while we serve it, else 0 */
  uint16_t qid;
};

struct ring {
  int ring_fd, fuse_fd, efd;
  unsigned sq_entries, cq_entries;
  uint32_t *sq_head, *sq_tail, *sq_mask, *sq_array;
  uint32_t *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  char *sqes; /* 128-byte SQEs */
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len, sqes_len;
  unsigned to_submit;
  struct entry *ents;
  unsigned n_ents;
  size_t payload_sz;
  uv_poll_t poll;
  uv_prepare_t prepare;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int stopped;
  int closed;
  unsigned reads; /* requests handed out since the last wake-up */
};

static struct ring *R; /* one session per daemon process */

static int enter(struct ring *r, unsigned submit, unsigned flags) {
  int n;
  do n = (int)syscall(__NR_io_uring_enter, r->ring_fd, submit, 0, flags, NULL, 0);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

static void submit_pending(struct ring *r) {
  while (r->to_submit > 0) {
    int n = enter(r, r->to_submit, 0);
    if (n <= 0) break;
    r->to_submit -= (unsigned)n;
  }
}

static struct io_uring_sqe *next_sqe(struct ring *r) {
  uint32_t tail = *r->sq_tail;
  if (tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) >= r->sq_entries) {
    submit_pending(r);
    if (tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) >= r->sq_entries) return NULL;
  }
  uint32_t idx = tail & *r->sq_mask;
  struct io_uring_sqe *sqe = (struct io_uring_sqe *)(r->sqes + (size_t)idx * 128);
  memset(sqe, 0, 128);
  r->sq_array[idx] = idx;
  __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
  r->to_submit++;
  return sqe;
}

static int queue_cmd(struct ring *r, unsigned i, uint32_t op, uint64_t commit_id) {
  struct io_uring_sqe *sqe = next_sqe(r);
  if (!sqe) return -EBUSY;
  struct entry *e = &r->ents[i];
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = r->fuse_fd;
  sqe->cmd_op = op;
  sqe->addr = (uint64_t)(uintptr_t)e->iov;
  sqe->len = 2;
  sqe->user_data = i;
  struct ring_cmd_req *req = (struct ring_cmd_req *)sqe->cmd;
  req->qid = e->qid;
  req->commit_id = commit_id;
  return 0;
}

static void ring_free(struct ring *r) {
  if (r->ring_fd >= 0) close(r->ring_fd);
  if (r->efd >= 0) close(r->efd);
  if (r->sq_map) munmap(r->sq_map, r->sq_map_len);
  if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_len);
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->ents) {
    for (unsigned i = 0; i < r->n_ents; i++) {
      if (r->ents[i].hdr) munmap(r->ents[i].hdr, sizeof(struct ring_req_header));
      if (r->ents[i].payload) munmap(r->ents[i].payload, r->payload_sz);
    }
    free(r->ents);
  }
  free(r);
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  (void)events;
  struct ring *r = poll->data;
  if (r->stopped) return;
  uint64_t v;
  /* Cleared before reading completions: one posted after this read signals again. */
  if (read(r->efd, &v, sizeof v) < 0) { /* EAGAIN: nothing to clear */ }
  r->reads = 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, ignored;
  if (napi_get_reference_value(r->env, r->callback, &cb) == napi_ok && napi_get_global(r->env, &recv) == napi_ok && napi_create_int32(r->env, status, &arg) == napi_ok) {
    if (napi_make_callback(r->env, r->context, recv, cb, 1, &arg, &ignored) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(r->env, &exc);
      napi_fatal_exception(r->env, exc);
    }
  }
  napi_close_handle_scope(r->env, scope);
}

/* Before the loop waits: the replies queued this turn go to the kernel in one io_uring_enter. */
static void on_prepare(uv_prepare_t *p) {
  struct ring *r = p->data;
  if (!r->stopped && r->to_submit) submit_pending(r);
}

static int possible_cpus(void) {
  /* The kernel makes one queue per possible CPU ("0-1", "0-63", "0"). */
  FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
  int lo = 0, hi = -1;
  if (f) {
    if (fscanf(f, "%d-%d", &lo, &hi) < 1) hi = -1;
    else if (hi < 0) hi = lo;
    fclose(f);
  }
  return hi >= 0 ? hi + 1 : (int)sysconf(_SC_NPROCESSORS_CONF);
}

static napi_value throw_err(napi_env env, int err, const char *what) {
  napi_throw_error(env, strerrorname_np(err) ? strerrorname_np(err) : "EIO", what);
  return NULL;
}

napi_value silo_ring_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, depth, payload;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &depth) != napi_ok ||
      napi_get_value_int32(env, argv[2], &payload) != napi_ok || napi_typeof(env, argv[3], &type) != napi_ok || type != napi_function || depth < 1) {
    napi_throw_type_error(env, "EINVAL", "expected (fd, depth, payloadSize, function)");
    return NULL;
  }
  if (R) return throw_err(env, EBUSY, "ringStart: a ring is running");
  struct ring *r = calloc(1, sizeof *r);
  if (!r) return throw_err(env, ENOMEM, "ringStart");
  r->ring_fd = r->efd = -1;
  r->fuse_fd = fd;
  int nq = possible_cpus();
  r->n_ents = (unsigned)(nq * depth);
  r->payload_sz = (size_t)payload;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* No DEFER_TASKRUN: the kernel copies a request in as soon as it comes (task work run on our
   * way back to user space), so a reply's io_uring_enter often returns with the caller's next
   * request already there: no epoll wake-up for it. DEFER_TASKRUN (copy only inside our enter)
   * measured worse: an extra enter per request (docs/benchmarks.md, "FUSE over io_uring"). */
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  p.cq_entries = r->n_ents * 2;
  int err = 0;
  unsigned sq_want = r->n_ents < 8 ? 8 : r->n_ents;
  r->ring_fd = (int)syscall(__NR_io_uring_setup, sq_want, &p);
  if (r->ring_fd < 0) { err = errno; goto fail; }
  r->sq_entries = p.sq_entries;
  r->cq_entries = p.cq_entries;
  r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (r->cq_map_len > r->sq_map_len) r->sq_map_len = r->cq_map_len;
    r->cq_map_len = r->sq_map_len;
  }
  r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->ring_fd, IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) { r->sq_map = NULL; err = errno; goto fail; }
  if (p.features & IORING_FEAT_SINGLE_MMAP) r->cq_map = r->sq_map;
  else {
    r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->ring_fd, IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED) { r->cq_map = NULL; err = errno; goto fail; }
  }
  r->sqes_len = (size_t)p.sq_entries * 128;
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->ring_fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) { r->sqes = NULL; err = errno; goto fail; }
  char *sq = r->sq_map, *cq = r->cq_map;
  r->sq_head = (uint32_t *)(sq + p.sq_off.head);
  r->sq_tail = (uint32_t *)(sq + p.sq_off.tail);
  r->sq_mask = (uint32_t *)(sq + p.sq_off.ring_mask);
  r->sq_array = (uint32_t *)(sq + p.sq_off.array);
  r->cq_head = (uint32_t *)(cq + p.cq_off.head);
  r->cq_tail = (uint32_t *)(cq + p.cq_off.tail);
  r->cq_mask = (uint32_t *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->efd < 0) { err = errno; goto fail; }
  if (syscall(__NR_io_uring_register, r->ring_fd, IORING_REGISTER_EVENTFD, &r->efd, 1) < 0) { err = errno; goto fail; }
  r->ents = calloc(r->n_ents, sizeof *r->ents);
  if (!r->ents) { err = ENOMEM; goto fail; }
  for (unsigned i = 0; i < r->n_ents; i++) {
    struct entry *e = &r->ents[i];
    /* mmap: page-aligned, untouched pages cost nothing until a large request uses them. */
    e->hdr = mmap(NULL, sizeof *e->hdr, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    e->payload = mmap(NULL, r->payload_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (e->hdr == MAP_FAILED || e->payload == MAP_FAILED) {
      if (e->hdr == MAP_FAILED) e->hdr = NULL;
      if (e->payload == MAP_FAILED) e->payload = NULL;
      err = ENOMEM;
      goto fail;
    }
    e->iov[0].iov_base = e->hdr;
    e->iov[0].iov_len = sizeof *e->hdr;
    e->iov[1].iov_base = e->payload;
    e->iov[1].iov_len = r->payload_sz;
    e->qid = (uint16_t)(i / (unsigned)depth);
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  r->env = env;
  napi_value name;
  napi_create_string_utf8(env, "silo:fuse-ring", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[3], 1, &r->callback);
  napi_async_init(env, NULL, name, &r->context);
  r->poll.data = r;
  r->prepare.data = r;
  uv_poll_init(loop, &r->poll, r->efd);
  uv_poll_start(&r->poll, UV_READABLE, on_poll);
  uv_prepare_init(loop, &r->prepare);
  uv_prepare_start(&r->prepare, on_prepare);
  uv_unref((uv_handle_t *)&r->prepare);
  R = r;
  napi_value ret;
  napi_create_int32(env, nq, &ret);
  return ret;
fail:
  ring_free(r);
  return throw_err(env, err, "ringStart");
}

/*
 * Registers every entry (after INIT is answered: the kernel refuses it before). 0, or -errno of
 * the first refusal: the kernel then gives up the ring for this connection and serves /dev/fuse.
 */
napi_value silo_ring_register(napi_env env, napi_callback_info info) {
  (void)info;
  struct ring *r = R;
  int err = r ? 0 : ENOTCONN;
  for (unsigned i = 0; r && i < r->n_ents && !err; i++) err = -queue_cmd(r, i, CMD_REGISTER, 0);
  if (r) submit_pending(r);
  /* A register the kernel refuses completes at once with the error. */
  if (r && !err && *r->cq_tail != *r->cq_head) {
    struct io_uring_cqe *c = &r->cqes[*r->cq_head & *r->cq_mask];
    if (c->res < 0) err = -c->res;
  }
  napi_value ret;
  napi_create_int32(env, -err, &ret);
  return ret;
}

napi_value silo_ring_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char *buf;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], (void **)&buf, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected (buffer)");
    return NULL;
  }
  struct ring *r = R;
  napi_value ret;
  int32_t result = 0;
  if (!r || r->stopped) result = -ENOTCONN;
  else if (r->reads >= READS_PER_WAKEUP) {
    /* Let the event loop have a turn (timers, other I/O): come back through the eventfd. */
    uint64_t one = 1;
    if (write(r->efd, &one, sizeof one) < 0) { /* cannot overflow: cleared at every wake-up */ }
  } else {
    uint32_t head = *r->cq_head;
    /* Nothing waiting: send the replies queued so far; the caller's next request may come back with them. */
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) && r->to_submit) submit_pending(r);
    if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
      struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
      unsigned i = (unsigned)c->user_data;
      int res = c->res;
      __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
      if (res < 0 || i >= r->n_ents) result = res < 0 ? res : -EIO;
      else {
        struct entry *e = &r->ents[i];
        struct ring_req_header *h = e->hdr;
        uint32_t total, payload = h->ent.payload_sz;
        memcpy(&total, h->in_out, 4);
        uint32_t op = total >= IN_HEADER + payload ? total - IN_HEADER - payload : 0;
        if (op > sizeof h->op_in || total > len) result = -EOVERFLOW;
        else {
          memcpy(buf, h->in_out, IN_HEADER);
          memcpy(buf + IN_HEADER, h->op_in, op);
          memcpy(buf + IN_HEADER + op, e->payload, payload);
          memcpy(&e->unique, h->in_out + 8, 8);
          result = (int32_t)total;
          r->reads++;
        }
      }
    }
  }
  napi_create_int32(env, result, &ret);
  return ret;
}

/* Returns 1 if the reply went to a ring entry (queued), 0 if `unique` is not the ring's. */
int silo_ring_reply(uint64_t unique, int32_t error, const void *payload, size_t len) {
  struct ring *r = R;
  if (!r) return 0;
  for (unsigned i = 0; i < r->n_ents; i++) {
    struct entry *e = &r->ents[i];
    if (e->unique != unique) continue;
    e->unique = 0;
    if (r->stopped) return 1;
    if (len > r->payload_sz) { len = 0; error = -EIO; }
    struct { uint32_t len; int32_t error; uint64_t unique; } oh = {(uint32_t)(OUT_HEADER + len), error, unique};
    memcpy(e->hdr->in_out, &oh, sizeof oh);
    if (len) memcpy(e->payload, payload, len);
    memset(&e->hdr->ent, 0, sizeof e->hdr->ent);
    e->hdr->ent.payload_sz = (uint32_t)len;
    e->hdr->ent.commit_id = unique;
    queue_cmd(r, i, CMD_COMMIT_AND_FETCH, unique);
    return 1;
  }
  return 0;
}

static void handle_closed(uv_handle_t *h) {
  struct ring *r = h->data;
  if (++r->closed == 2) ring_free(r);
}

napi_value silo_ring_stop(napi_env env, napi_callback_info info) {
  (void)info;
  struct ring *r = R;
  if (!r || r->stopped) return NULL;
  r->stopped = 1;
  R = NULL;
  uv_poll_stop(&r->poll);
  uv_prepare_stop(&r->prepare);
  napi_delete_reference(env, r->callback);
  napi_async_destroy(env, r->context);
  /* The kernel cancels the commands still armed when the ring fd closes; the buffers go once
   * libuv has closed both handles (they live in the struct). */
  close(r->ring_fd);
  r->ring_fd = -1;
  uv_close((uv_handle_t *)&r->prepare, handle_closed);
  uv_close((uv_handle_t *)&r->poll, handle_closed);
  return NULL;
}
