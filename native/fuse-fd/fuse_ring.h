/* FUSE over io_uring (fuse_ring.c): the functions fuse_fd.c exports and calls. */
#ifndef SILO_FUSE_RING_H
#define SILO_FUSE_RING_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
napi_value silo_ring_start(napi_env env, napi_callback_info info);
napi_value silo_ring_register(napi_env env, napi_callback_info info);
napi_value silo_ring_read(napi_env env, napi_callback_info info);
napi_value silo_ring_stop(napi_env env, napi_callback_info info);
int silo_ring_reply(uint64_t unique, int32_t error, const void *payload, size_t len);
#endif
