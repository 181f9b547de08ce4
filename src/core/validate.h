/* core/validate.h: pre-process validation: a decoded request checked
 * against the model's configuration before any backend sees it. */
#ifndef INFERD_CORE_VALIDATE_H
#define INFERD_CORE_VALIDATE_H

#include "core/err.h"
#include "core/model_config.h"
#include "core/request.h"

/* Every required input present and no unknown one; datatypes equal; shapes
 * match dims (-1 wildcards, the batch dimension when max_batch_size > 0, the
 * same batch for every input, batch <= max_batch_size); requested outputs
 * exist; classification only on numeric outputs. -EINVAL with a message
 * that names the input and says what was expected and what came. */
int validate_request(const model_config *c, const infer_request *req, err *e);

#endif
