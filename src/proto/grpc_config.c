/* proto/grpc_config.c: a model configuration as the gRPC ModelConfig
 * message (the ModelConfig RPC), built in an arena. */
#include <string.h>

#include "proto/grpc_codec.h"
#include "proto/grpc_config.h"

/* A message of type T in the arena, set to its INIT value. */
#define NEW(a, T, INIT)                                                                            \
  ({                                                                                               \
    T *p_ = arena_alloc((a), sizeof(T));                                                           \
    if (p_) {                                                                                      \
      T init_ = INIT;                                                                              \
      *p_ = init_;                                                                                 \
    }                                                                                              \
    p_;                                                                                            \
  })

/* An array of n pointers in the arena (one element at least, so that a
 * NULL result means out of memory). */
static void *ptrs(arena *a, size_t n) { return arena_calloc(a, n ? n : 1, sizeof(void *)); }

static char *str(const char *s) { return (char *)(s ? s : ""); }

static Inference__ModelTensorReshape *reshape_of(arena *a, const config_tensor *t) {
  if (!t->has_reshape) return NULL;
  Inference__ModelTensorReshape *r =
      NEW(a, Inference__ModelTensorReshape, INFERENCE__MODEL_TENSOR_RESHAPE__INIT);
  if (!r) return NULL;
  r->n_shape = (size_t)t->reshape_ndim;
  r->shape = (int64_t *)t->reshape_dims;
  return r;
}

static Inference__ModelQueuePolicy *queue_policy_of(arena *a, const queue_policy *q) {
  Inference__ModelQueuePolicy *p =
      NEW(a, Inference__ModelQueuePolicy, INFERENCE__MODEL_QUEUE_POLICY__INIT);
  if (!p) return NULL;
  p->timeout_action = q->timeout_action == TIMEOUT_DELAY
                          ? INFERENCE__MODEL_QUEUE_POLICY__TIMEOUT_ACTION__DELAY
                          : INFERENCE__MODEL_QUEUE_POLICY__TIMEOUT_ACTION__REJECT;
  p->default_timeout_microseconds = q->default_timeout_us;
  p->allow_timeout_override = q->allow_timeout_override;
  p->max_queue_size = q->max_queue_size;
  return p;
}

static int batching_of(arena *a, const dynamic_batching *d, Inference__ModelDynamicBatching **out) {
  Inference__ModelDynamicBatching *b =
      NEW(a, Inference__ModelDynamicBatching, INFERENCE__MODEL_DYNAMIC_BATCHING__INIT);
  int32_t *pref = arena_calloc(a, d->n_preferred + 1, sizeof *pref);
  Inference__ModelDynamicBatching__PriorityQueuePolicyEntry **entries =
      ptrs(a, d->n_priority_policies);
  if (!b || !pref || !entries) return -ENOMEM;
  for (size_t i = 0; i < d->n_preferred; i++)
    pref[i] = (int32_t)d->preferred_batch_size[i];
  b->n_preferred_batch_size = d->n_preferred;
  b->preferred_batch_size = pref;
  b->max_queue_delay_microseconds = d->max_queue_delay_us;
  b->preserve_ordering = d->preserve_ordering;
  b->priority_levels = d->priority_levels;
  b->default_priority_level = d->default_priority_level;
  if (!(b->default_queue_policy = queue_policy_of(a, &d->default_queue_policy))) return -ENOMEM;
  for (size_t i = 0; i < d->n_priority_policies; i++) {
    Inference__ModelDynamicBatching__PriorityQueuePolicyEntry *en =
        NEW(a, Inference__ModelDynamicBatching__PriorityQueuePolicyEntry,
            INFERENCE__MODEL_DYNAMIC_BATCHING__PRIORITY_QUEUE_POLICY_ENTRY__INIT);
    if (!en || !(en->value = queue_policy_of(a, &d->priority_policies[i].policy))) return -ENOMEM;
    en->key = d->priority_policies[i].level;
    entries[i] = en;
  }
  b->n_priority_queue_policy = d->n_priority_policies;
  b->priority_queue_policy = entries;
  *out = b;
  return 0;
}

static int ensemble_of(arena *a, const model_config *c, Inference__ModelEnsembling **out) {
  Inference__ModelEnsembling *en =
      NEW(a, Inference__ModelEnsembling, INFERENCE__MODEL_ENSEMBLING__INIT);
  Inference__ModelEnsembling__Step **steps = ptrs(a, c->n_ensemble_steps);
  if (!en || !steps) return -ENOMEM;
  for (size_t i = 0; i < c->n_ensemble_steps; i++) {
    const ensemble_step *cs = &c->ensemble_steps[i];
    Inference__ModelEnsembling__Step *st =
        NEW(a, Inference__ModelEnsembling__Step, INFERENCE__MODEL_ENSEMBLING__STEP__INIT);
    Inference__ModelEnsembling__Step__InputMapEntry **in = ptrs(a, cs->n_input_map);
    Inference__ModelEnsembling__Step__OutputMapEntry **outm = ptrs(a, cs->n_output_map);
    if (!st || !in || !outm) return -ENOMEM;
    st->model_name = str(cs->model_name);
    st->model_version = cs->model_version;
    for (size_t k = 0; k < cs->n_input_map; k++) {
      in[k] = NEW(a, Inference__ModelEnsembling__Step__InputMapEntry,
                  INFERENCE__MODEL_ENSEMBLING__STEP__INPUT_MAP_ENTRY__INIT);
      if (!in[k]) return -ENOMEM;
      in[k]->key = str(cs->input_map[k].key);
      in[k]->value = str(cs->input_map[k].value);
    }
    for (size_t k = 0; k < cs->n_output_map; k++) {
      outm[k] = NEW(a, Inference__ModelEnsembling__Step__OutputMapEntry,
                    INFERENCE__MODEL_ENSEMBLING__STEP__OUTPUT_MAP_ENTRY__INIT);
      if (!outm[k]) return -ENOMEM;
      outm[k]->key = str(cs->output_map[k].key);
      outm[k]->value = str(cs->output_map[k].value);
    }
    st->n_input_map = cs->n_input_map;
    st->input_map = in;
    st->n_output_map = cs->n_output_map;
    st->output_map = outm;
    steps[i] = st;
  }
  en->n_step = c->n_ensemble_steps;
  en->step = steps;
  *out = en;
  return 0;
}

static int warmups_of(arena *a, const model_config *c, Inference__ModelConfig *m) {
  Inference__ModelWarmup **w = ptrs(a, c->n_warmups);
  if (!w) return -ENOMEM;
  for (size_t i = 0; i < c->n_warmups; i++) {
    const model_warmup *cw = &c->warmups[i];
    w[i] = NEW(a, Inference__ModelWarmup, INFERENCE__MODEL_WARMUP__INIT);
    Inference__ModelWarmup__InputsEntry **in = ptrs(a, cw->n_inputs);
    if (!w[i] || !in) return -ENOMEM;
    w[i]->name = str(cw->name);
    w[i]->batch_size = cw->batch_size;
    w[i]->count = cw->count;
    for (size_t k = 0; k < cw->n_inputs; k++) {
      const warmup_input *ci = &cw->inputs[k];
      in[k] =
          NEW(a, Inference__ModelWarmup__InputsEntry, INFERENCE__MODEL_WARMUP__INPUTS_ENTRY__INIT);
      Inference__ModelWarmup__Input *v =
          NEW(a, Inference__ModelWarmup__Input, INFERENCE__MODEL_WARMUP__INPUT__INIT);
      if (!in[k] || !v) return -ENOMEM;
      v->data_type = (Inference__DataType)ci->dtype;
      v->n_dims = (size_t)ci->ndim;
      v->dims = (int64_t *)ci->dims;
      if (ci->source == WARMUP_FILE) {
        v->input_data_type_case = INFERENCE__MODEL_WARMUP__INPUT__INPUT_DATA_TYPE_INPUT_DATA_FILE;
        v->input_data_file = str(ci->input_data_file);
      } else if (ci->source == WARMUP_RANDOM) {
        v->input_data_type_case = INFERENCE__MODEL_WARMUP__INPUT__INPUT_DATA_TYPE_RANDOM_DATA;
        v->random_data = 1;
      } else {
        v->input_data_type_case = INFERENCE__MODEL_WARMUP__INPUT__INPUT_DATA_TYPE_ZERO_DATA;
        v->zero_data = 1;
      }
      in[k]->key = str(ci->name);
      in[k]->value = v;
    }
    w[i]->n_inputs = cw->n_inputs;
    w[i]->inputs = in;
  }
  m->n_model_warmup = c->n_warmups;
  m->model_warmup = w;
  return 0;
}

int grpc_model_config(arena *a, const model_config *c, Inference__ModelConfig **out) {
  Inference__ModelConfig *m = NEW(a, Inference__ModelConfig, INFERENCE__MODEL_CONFIG__INIT);
  Inference__ModelVersionPolicy *vp =
      NEW(a, Inference__ModelVersionPolicy, INFERENCE__MODEL_VERSION_POLICY__INIT);
  Inference__ModelInput **in = ptrs(a, c->n_inputs);
  Inference__ModelOutput **outs = ptrs(a, c->n_outputs);
  Inference__ModelInstanceGroup **groups = ptrs(a, c->n_instance_groups);
  Inference__ModelConfig__ParametersEntry **params = ptrs(a, c->n_params);
  if (!m || !vp || !in || !outs || !groups || !params) return -ENOMEM;
  m->name = str(c->name);
  m->platform = str(c->platform);
  m->backend = str(c->backend);
  m->max_batch_size = c->max_batch_size;
  m->default_model_filename = str(c->default_model_filename);

  switch (c->version_policy.kind) {
  case VERSION_POLICY_ALL:
    vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_ALL;
    vp->all =
        NEW(a, Inference__ModelVersionPolicy__All, INFERENCE__MODEL_VERSION_POLICY__ALL__INIT);
    if (!vp->all) return -ENOMEM;
    break;
  case VERSION_POLICY_SPECIFIC:
    vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_SPECIFIC;
    vp->specific = NEW(a, Inference__ModelVersionPolicy__Specific,
                       INFERENCE__MODEL_VERSION_POLICY__SPECIFIC__INIT);
    if (!vp->specific) return -ENOMEM;
    vp->specific->n_versions = c->version_policy.n_specific;
    vp->specific->versions = c->version_policy.specific;
    break;
  default:
    vp->policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_LATEST;
    vp->latest = NEW(a, Inference__ModelVersionPolicy__Latest,
                     INFERENCE__MODEL_VERSION_POLICY__LATEST__INIT);
    if (!vp->latest) return -ENOMEM;
    vp->latest->num_versions = c->version_policy.latest_num ? c->version_policy.latest_num : 1;
  }
  m->version_policy = vp;

  for (size_t i = 0; i < c->n_inputs; i++) {
    const config_tensor *t = &c->inputs[i];
    in[i] = NEW(a, Inference__ModelInput, INFERENCE__MODEL_INPUT__INIT);
    if (!in[i]) return -ENOMEM;
    in[i]->name = str(t->name);
    in[i]->data_type = (Inference__DataType)t->dtype;
    in[i]->format = (Inference__ModelInput__Format)t->format;
    in[i]->n_dims = (size_t)t->ndim;
    in[i]->dims = (int64_t *)t->dims;
    in[i]->optional = t->optional;
    in[i]->allow_ragged_batch = t->allow_ragged_batch;
    in[i]->is_shape_tensor = t->is_shape_tensor;
    if (t->has_reshape && !(in[i]->reshape = reshape_of(a, t))) return -ENOMEM;
  }
  m->n_input = c->n_inputs;
  m->input = in;
  for (size_t i = 0; i < c->n_outputs; i++) {
    const config_tensor *t = &c->outputs[i];
    outs[i] = NEW(a, Inference__ModelOutput, INFERENCE__MODEL_OUTPUT__INIT);
    if (!outs[i]) return -ENOMEM;
    outs[i]->name = str(t->name);
    outs[i]->data_type = (Inference__DataType)t->dtype;
    outs[i]->n_dims = (size_t)t->ndim;
    outs[i]->dims = (int64_t *)t->dims;
    outs[i]->label_filename = str(t->label_filename);
    outs[i]->is_shape_tensor = t->is_shape_tensor;
    if (t->has_reshape && !(outs[i]->reshape = reshape_of(a, t))) return -ENOMEM;
  }
  m->n_output = c->n_outputs;
  m->output = outs;
  for (size_t i = 0; i < c->n_instance_groups; i++) {
    const instance_group *g = &c->instance_groups[i];
    groups[i] = NEW(a, Inference__ModelInstanceGroup, INFERENCE__MODEL_INSTANCE_GROUP__INIT);
    if (!groups[i]) return -ENOMEM;
    groups[i]->name = str(g->name);
    groups[i]->count = g->count;
    groups[i]->kind = (Inference__ModelInstanceGroup__Kind)g->kind;
  }
  m->n_instance_group = c->n_instance_groups;
  m->instance_group = groups;
  for (size_t i = 0; i < c->n_params; i++) {
    params[i] = NEW(a, Inference__ModelConfig__ParametersEntry,
                    INFERENCE__MODEL_CONFIG__PARAMETERS_ENTRY__INIT);
    Inference__ModelParameter *v =
        NEW(a, Inference__ModelParameter, INFERENCE__MODEL_PARAMETER__INIT);
    if (!params[i] || !v) return -ENOMEM;
    v->string_value = str(c->params[i].value);
    params[i]->key = str(c->params[i].key);
    params[i]->value = v;
  }
  m->n_parameters = c->n_params;
  m->parameters = params;
  if (c->has_dynamic_batching) {
    m->scheduling_choice_case = INFERENCE__MODEL_CONFIG__SCHEDULING_CHOICE_DYNAMIC_BATCHING;
    if (batching_of(a, &c->dynamic_batching, &m->dynamic_batching) < 0) return -ENOMEM;
  } else if (c->n_ensemble_steps) {
    m->scheduling_choice_case = INFERENCE__MODEL_CONFIG__SCHEDULING_CHOICE_ENSEMBLE_SCHEDULING;
    if (ensemble_of(a, c, &m->ensemble_scheduling) < 0) return -ENOMEM;
  }
  if (warmups_of(a, c, m) < 0) return -ENOMEM;
  *out = m;
  return 0;
}
