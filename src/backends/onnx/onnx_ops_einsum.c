/* backends/onnx/onnx_ops_einsum.c: Einsum, numpy's einsum: any number of
 * operands, repeated labels within a term (diagonals), "..." broadcasting
 * (right-aligned, dimensions of 1 stretch), the implicit output (the
 * ellipsis dimensions, then the labels used once in alphabetical order)
 * and the explicit one after "->".
 *
 * Every label (and every ellipsis dimension) becomes one loop index with a
 * stride in each operand: the sum of the strides of the dimensions that
 * carry it, which reads a diagonal where a label repeats, and 0 where an
 * operand lacks it or has it of size 1. A permutation is thus only a
 * choice of strides, and the product needs no copy (kernels never
 * allocate). The loops are nested as a batched matrix product: the output
 * dimensions that the other operands share ("rows" and batch), then the
 * summed labels, then the output dimensions of the last operand alone
 * ("columns"), innermost and contiguous where the strides allow, so
 * bij,bjk->bik runs as out[b,i,:] += x[b,i,j] * y[b,j,:]. */
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#define MAX_OPERANDS 16
#define N_LABELS     52 /* a-z, A-Z */
#define ELLIPSIS     (-1)
/* Loop indices: one per label used, and one per ellipsis dimension. */
#define MAX_IDX (N_LABELS + ONNX_MAX_DIMS)

/* A term: its labels in order (0..51, or ELLIPSIS once). */
typedef struct term {
  int n;
  int8_t l[N_LABELS + 1];
  bool ell;
} term;

typedef struct einsum_attr {
  int n_in;
  term in[MAX_OPERANDS];
  bool explicit_out;
  term out;
} einsum_attr;

static int label_of(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
  return -2;
}

/* ASCII order, which numpy's implicit output follows: A..Z before a..z. */
static int label_rank(int l) { return l >= 26 ? l - 26 : 26 + l; }

/* Parses s[0..len) (spaces removed) as one term. */
static int parse_term(const char *s, size_t len, term *t, err *e) {
  memset(t, 0, sizeof *t);
  for (size_t i = 0; i < len;) {
    if (s[i] == '.') {
      if (len - i < 3 || s[i + 1] != '.' || s[i + 2] != '.' || t->ell)
        return err_set(e, -EINVAL, "a term has a malformed or second ellipsis");
      t->ell = true;
      t->l[t->n++] = ELLIPSIS;
      i += 3;
      continue;
    }
    int l = label_of(s[i]);
    if (l < 0) return err_set(e, -EINVAL, "'%c' is not a letter", s[i]);
    if (t->n >= N_LABELS) return err_set(e, -EINVAL, "a term has too many labels");
    t->l[t->n++] = (int8_t)l;
    i++;
  }
  return 0;
}

static int einsum_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  einsum_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  const char *text;
  int rc = onnx_attr_string(p, "equation", NULL, a, &text, e);
  if (rc) return rc;
  if (!text) return err_set(e, -EINVAL, "attribute 'equation' is required");
  size_t len = 0;
  char *eq = arena_strdup(a, text);
  if (!eq) return err_set(e, -ENOMEM, "out of memory");
  for (const char *c = text; *c; c++) /* spaces are allowed anywhere */
    if (*c != ' ') eq[len++] = *c;
  eq[len] = 0;
  const char *arrow = strstr(eq, "->");
  size_t lhs = arrow ? (size_t)(arrow - eq) : len;
  for (size_t i = 0; i <= lhs;) {
    size_t j = i;
    while (j < lhs && eq[j] != ',')
      j++;
    if (at->n_in == MAX_OPERANDS)
      return err_set(e, -ENOTSUP, "more than %d operands are not supported", MAX_OPERANDS);
    if ((rc = parse_term(eq + i, j - i, &at->in[at->n_in++], e))) return rc;
    i = j + 1;
  }
  if (at->n_in != n->n_in)
    return err_set(e, -EINVAL, "equation '%s' has %d terms for %d inputs", eq, at->n_in, n->n_in);
  if (arrow) {
    at->explicit_out = true;
    if ((rc = parse_term(arrow + 2, len - lhs - 2, &at->out, e))) return rc;
    bool seen[N_LABELS] = {false};
    for (int i = 0; i < at->out.n; i++) {
      int l = at->out.l[i];
      if (l == ELLIPSIS) continue;
      if (seen[l]) return err_set(e, -EINVAL, "the output of '%s' repeats a label", eq);
      seen[l] = true;
      bool used = false;
      for (int k = 0; k < at->n_in && !used; k++)
        for (int j = 0; j < at->in[k].n; j++)
          used |= at->in[k].l[j] == l;
      if (!used) return err_set(e, -EINVAL, "the output of '%s' has a label no input has", eq);
    }
    return 0;
  }
  /* Implicit: the ellipsis, then the labels used exactly once, sorted. */
  int count[N_LABELS] = {0};
  bool ell = false;
  for (int k = 0; k < at->n_in; k++)
    for (int j = 0; j < at->in[k].n; j++) {
      if (at->in[k].l[j] == ELLIPSIS)
        ell = true;
      else
        count[at->in[k].l[j]]++;
    }
  if (ell) {
    at->out.l[at->out.n++] = ELLIPSIS;
    at->out.ell = true;
  }
  for (int r = 0; r < N_LABELS; r++)
    for (int l = 0; l < N_LABELS; l++)
      if (label_rank(l) == r && count[l] == 1) at->out.l[at->out.n++] = (int8_t)l;
  return 0;
}

/* ---- geometry ----------------------------------------------------------- */

/* The loop indices of one evaluation: sizes, each operand's and the
 * output's stride per index, and the output's shape. */
typedef struct plan {
  int ni;
  int64_t size[MAX_IDX];
  int64_t stride[MAX_OPERANDS + 1][MAX_IDX]; /* [n_in] is the output */
  bool in_out[MAX_IDX];
  int out_ndim;
  int64_t out_dims[ONNX_MAX_DIMS];
} plan;

/* Index of label l (0..51) or of ellipsis dimension d (N_LABELS + d). */
static int plan_build(const einsum_attr *at, const onnx_tensor *const *in, plan *pl, err *e) {
  memset(pl, 0, sizeof *pl);
  int ell_rank = 0, ell_n[MAX_OPERANDS];
  for (int k = 0; k < at->n_in; k++) {
    int labels = at->in[k].n - (at->in[k].ell ? 1 : 0);
    ell_n[k] = in[k]->ndim - labels;
    if (ell_n[k] < 0 || (!at->in[k].ell && ell_n[k] != 0))
      return err_set(e, -EINVAL, "input %d has rank %d; its term has %d labels%s", k, in[k]->ndim,
                     labels, at->in[k].ell ? " and an ellipsis" : "");
    if (ell_n[k] > ell_rank) ell_rank = ell_n[k];
  }
  /* Slots 0..51 are labels, 52.. ellipsis dimensions (right-aligned). */
  int64_t size[MAX_IDX];
  bool used[MAX_IDX] = {false};
  for (int i = 0; i < MAX_IDX; i++)
    size[i] = 1;
  int64_t slot_stride[MAX_OPERANDS][MAX_IDX];
  memset(slot_stride, 0, sizeof slot_stride);
  for (int k = 0; k < at->n_in; k++) {
    int64_t stride[ONNX_MAX_DIMS], s = 1;
    for (int d = in[k]->ndim - 1; d >= 0; d--) {
      stride[d] = s;
      s *= in[k]->dims[d];
    }
    int d = 0;
    for (int j = 0; j < at->in[k].n; j++) {
      int first = at->in[k].l[j] == ELLIPSIS ? N_LABELS + ell_rank - ell_n[k] : at->in[k].l[j];
      int count = at->in[k].l[j] == ELLIPSIS ? ell_n[k] : 1;
      for (int c = 0; c < count; c++, d++) {
        int slot = first + c;
        int64_t dim = in[k]->dims[d];
        used[slot] = true;
        if (dim != 1 && size[slot] != 1 && size[slot] != dim)
          return err_set(e, -EINVAL, "a dimension of input %d is %lld where another is %lld", k,
                         (long long)dim, (long long)size[slot]);
        if (dim != 1) {
          size[slot] = dim;
          slot_stride[k][slot] += stride[d];
        }
      }
    }
  }
  /* Output slots in order, then the summed ones. */
  int order[MAX_IDX], n_order = 0;
  bool placed[MAX_IDX] = {false};
  for (int j = 0; j < at->out.n; j++) {
    int first = at->out.l[j] == ELLIPSIS ? N_LABELS : at->out.l[j];
    int count = at->out.l[j] == ELLIPSIS ? ell_rank : 1;
    for (int c = 0; c < count; c++) {
      order[n_order++] = first + c;
      placed[first + c] = true;
    }
  }
  if (n_order > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "an output of %d dimensions is not supported", n_order);
  pl->out_ndim = n_order;
  for (int s = 0; s < MAX_IDX; s++)
    if (used[s] && !placed[s]) order[n_order++] = s;
  pl->ni = n_order;
  int64_t os = 1;
  for (int i = pl->out_ndim - 1; i >= 0; i--) {
    pl->stride[at->n_in][i] = size[order[i]] == 1 ? 0 : os;
    os *= size[order[i]];
  }
  for (int i = 0; i < pl->ni; i++) {
    pl->size[i] = size[order[i]];
    pl->in_out[i] = i < pl->out_ndim;
    if (i < pl->out_ndim) pl->out_dims[i] = size[order[i]];
    for (int k = 0; k < at->n_in; k++)
      pl->stride[k][i] = slot_stride[k][order[i]];
  }
  return 0;
}

static bool supported(inferd_dtype t) { return onnx_dtype_is_int(t) || onnx_dtype_is_float(t); }

static int einsum_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const einsum_attr *at = n->attr;
  for (int k = 0; k < n->n_in; k++) {
    if (!in[k]) return err_set(e, -EINVAL, "input %d is missing", k);
    if (in[k]->dtype != in[0]->dtype)
      return err_set(e, -EINVAL, "inputs have types %s and %s; they must match",
                     dtype_name(in[0]->dtype), dtype_name(in[k]->dtype));
  }
  if (!supported(in[0]->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  plan pl;
  int rc = plan_build(at, in, &pl, e);
  if (rc) return rc;
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], pl.out_ndim, pl.out_dims);
  return 0;
}

/* ---- evaluation --------------------------------------------------------- */

/* The loop nest over the plan's indices, split into "rows" (output indices
 * some operand but the last has), "sums" (not in the output) and
 * "columns" (output indices of the last operand alone): for every row and
 * sum, p = the product of the other operands' elements, then for every
 * column out += p * last. Integers multiply and add in the unsigned W, so
 * that they wrap. */
#define EINSUM_KERNEL(N, T, W)                                                                     \
  ONNX_KERNEL static void einsum_##N(const plan *pl, int nin, const void *const *ins,              \
                                     void *out_) {                                                 \
    T *out = out_;                                                                                 \
    const T *x[MAX_OPERANDS];                                                                      \
    int last = nin - 1;                                                                            \
    for (int k = 0; k < nin; k++)                                                                  \
      x[k] = ins[k];                                                                               \
    int outer[MAX_IDX], no = 0, cols[MAX_IDX], nc = 0;                                             \
    for (int i = 0; i < pl->ni; i++) {                                                             \
      bool shared = !pl->in_out[i];                                                                \
      for (int k = 0; k < last; k++)                                                               \
        shared |= pl->stride[k][i] != 0;                                                           \
      if (shared)                                                                                  \
        outer[no++] = i;                                                                           \
      else                                                                                         \
        cols[nc++] = i;                                                                            \
    }                                                                                              \
    /* outer: rows first, then sums (the plan lists output indices first) */                       \
    int64_t inner_n = nc ? pl->size[cols[nc - 1]] : 1;                                             \
    int64_t so = nc ? pl->stride[nin][cols[nc - 1]] : 0,                                           \
            sl = nc ? pl->stride[last][cols[nc - 1]] : 0;                                          \
    int64_t oidx[MAX_IDX] = {0}, cidx[MAX_IDX] = {0};                                              \
    int64_t off[MAX_OPERANDS + 1] = {0};                                                           \
    for (;;) {                                                                                     \
      W p = 1;                                                                                     \
      for (int k = 0; k < last; k++)                                                               \
        p = (W)(p * (W)x[k][off[k]]);                                                              \
      int64_t co = off[nin], cl = off[last];                                                       \
      for (;;) {                                                                                   \
        T *o = out + co;                                                                           \
        const T *y = x[last] + cl;                                                                 \
        if (so == 1 && sl == 1)                                                                    \
          for (int64_t j = 0; j < inner_n; j++)                                                    \
            o[j] = (T)((W)o[j] + p * (W)y[j]);                                                     \
        else                                                                                       \
          for (int64_t j = 0; j < inner_n; j++)                                                    \
            o[j * so] = (T)((W)o[j * so] + p * (W)y[j * sl]);                                      \
        int d = nc - 2;                                                                            \
        for (; d >= 0; d--) {                                                                      \
          int i = cols[d];                                                                         \
          co += pl->stride[nin][i];                                                                \
          cl += pl->stride[last][i];                                                               \
          if (++cidx[d] < pl->size[i]) break;                                                      \
          co -= pl->stride[nin][i] * pl->size[i];                                                  \
          cl -= pl->stride[last][i] * pl->size[i];                                                 \
          cidx[d] = 0;                                                                             \
        }                                                                                          \
        if (d < 0) break;                                                                          \
      }                                                                                            \
      int d = no - 1;                                                                              \
      for (; d >= 0; d--) {                                                                        \
        int i = outer[d];                                                                          \
        for (int k = 0; k <= nin; k++)                                                             \
          off[k] += pl->stride[k][i];                                                              \
        if (++oidx[d] < pl->size[i]) break;                                                        \
        for (int k = 0; k <= nin; k++)                                                             \
          off[k] -= pl->stride[k][i] * pl->size[i];                                                \
        oidx[d] = 0;                                                                               \
      }                                                                                            \
      if (d < 0) break;                                                                            \
    }                                                                                              \
  }
EINSUM_KERNEL(f32, float, float)
EINSUM_KERNEL(f64, double, double)
EINSUM_KERNEL(i8, int8_t, uint32_t)
EINSUM_KERNEL(i16, int16_t, uint32_t)
EINSUM_KERNEL(i32, int32_t, uint32_t)
EINSUM_KERNEL(i64, int64_t, uint64_t)
EINSUM_KERNEL(u8, uint8_t, uint32_t)
EINSUM_KERNEL(u16, uint16_t, uint32_t)
EINSUM_KERNEL(u32, uint32_t, uint32_t)
EINSUM_KERNEL(u64, uint64_t, uint64_t)

typedef void (*einsum_fn)(const plan *pl, int nin, const void *const *ins, void *out);
static const einsum_fn einsum_k[INFERD_TYPE_BF16 + 1] = {[INFERD_TYPE_FP32] = einsum_f32,
                                                         [INFERD_TYPE_FP64] = einsum_f64,
                                                         ONNX_TAB_SIGNED(ONNX_K1, einsum),
                                                         ONNX_TAB_UNSIGNED(ONNX_K1, einsum)};

static int einsum_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const einsum_attr *at = n->attr;
  plan pl;
  int rc = plan_build(at, in, &pl, e);
  if (rc) return rc;
  if (out[0]->count == 0) return 0;
  memset(out[0]->data, 0, onnx_tensor_bytes(out[0]));
  for (int i = 0; i < pl.ni; i++)
    if (pl.size[i] == 0) return 0; /* an empty sum: zeros */
  const void *ins[MAX_OPERANDS];
  for (int k = 0; k < n->n_in; k++)
    ins[k] = in[k]->data;
  einsum_k[out[0]->dtype](&pl, n->n_in, ins, out[0]->data);
  return 0;
}

static const onnx_op op_einsum = {.name = "Einsum",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = MAX_OPERANDS,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = einsum_init,
                                  .infer = einsum_infer,
                                  .run = einsum_run};

const onnx_op_row onnx_ops_einsum[] = {
    {&op_einsum, 12},
    {NULL, 0},
};
