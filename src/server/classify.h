/* server/classify.h: the classification extension, a post-processing step:
 * an output asked for with parameters.classification = k comes back as the
 * k largest values of each batch row, as BYTES "value:index[:label]", the
 * label from the output's label_filename. */
#ifndef INFERD_SERVER_CLASSIFY_H
#define INFERD_SERVER_CLASSIFY_H

#include "core/err.h"
#include "core/request.h"
#include "repo/repo.h"

/* Rewrites, in res, every output the request asked to classify. */
int classify_outputs(const model_version *mv, const infer_request *req, infer_response *res,
                     err *e);

#endif
