/* core/log.h: the server's log: levels, text or one JSON object per line, on
 * stderr. */
#ifndef INFERD_CORE_LOG_H
#define INFERD_CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_VERBOSE = 3 };

extern int log_level;

void log_configure(int level, bool json);
/* 0 and the level for "error", "warn", "info", "verbose"; -1 otherwise. */
int log_level_from_name(const char *name);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)                                                                              \
  do {                                                                                             \
    if (log_level >= LOG_WARN) log_write(LOG_WARN, __VA_ARGS__);                                   \
  } while (0)
#define log_info(...)                                                                              \
  do {                                                                                             \
    if (log_level >= LOG_INFO) log_write(LOG_INFO, __VA_ARGS__);                                   \
  } while (0)
#define log_verbose(...)                                                                           \
  do {                                                                                             \
    if (log_level >= LOG_VERBOSE) log_write(LOG_VERBOSE, __VA_ARGS__);                             \
  } while (0)

#endif
