/* proto/grpc_config.h: a model configuration as the gRPC ModelConfig. */
#ifndef INFERD_PROTO_GRPC_CONFIG_H
#define INFERD_PROTO_GRPC_CONFIG_H

#include "core/arena.h"
#include "core/model_config.h"
#include "proto/inference.pb-c.h"

/* The message (pointing into c and the arena); -ENOMEM. */
int grpc_model_config(arena *a, const model_config *c, Inference__ModelConfig **out);

#endif
