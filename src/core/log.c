/* core/log.c: one line per message, written with a single write(2) so that
 * lines from different threads never interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"error", "warn", "info", "verbose"};

void log_configure(int level, bool json) {
  log_level = level;
  log_json = json;
}

int log_level_from_name(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

/* Appends s to out as the inside of a JSON string. */
static size_t json_escape(char *out, size_t size, const char *s) {
  size_t n = 0;
  for (; *s && n + 7 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  return n;
}

void log_write(int level, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + w, sizeof when - w, ".%06ldZ", ts.tv_nsec / 1000);

  char line[4200];
  size_t n;
  if (log_json) {
    n = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", when,
                         level_names[level]);
    n += json_escape(line + n, sizeof line - n - 4, msg);
    n += (size_t)snprintf(line + n, sizeof line - n, "\"}\n");
  } else {
    n = (size_t)snprintf(line, sizeof line, "%s %-5s %s\n", when, level_names[level], msg);
  }
  if (n >= sizeof line) n = sizeof line - 1;
  ssize_t r = write(STDERR_FILENO, line, n);
  (void)r;
}
