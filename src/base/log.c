#include "base/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *g_program = "coffer";
static enum cf_log_level g_max = CF_LOG_INFO;

void cf_log_setup(const char *program, enum cf_log_level max_level)
{
        g_program = program;
        g_max = max_level;
}

enum cf_log_level cf_log_max_level(void)
{
        return g_max;
}

static const char *level_name(enum cf_log_level level)
{
        switch (level) {
        case CF_LOG_ERR:
                return "error";
        case CF_LOG_WARNING:
                return "warning";
        case CF_LOG_INFO:
                return "info";
        case CF_LOG_DEBUG:
                return "debug";
        default:
                return "?";
        }
}

void cf_log(enum cf_log_level level, const char *fmt, ...)
{
        char line[2048];
        char stamp[32];
        struct timespec ts;
        struct tm tm;
        va_list ap;

        if (level > g_max) {
                return;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One write per line, so concurrent processes do not interleave mid-line. */
        fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000, g_program,
                level_name(level), line);
}

char *cf_log_escape(const void *data, size_t size, char *out, size_t out_size)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = data;
        size_t o = 0;

        if (out_size < 8) {
                if (out_size > 0) {
                        out[0] = '\0';
                }
                return out;
        }
        out[o++] = '\'';
        for (size_t i = 0; i < size; i++) {
                unsigned char ch = p[i];
                if (o + 4 + 5 > out_size) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\') {
                        out[o++] = (char)ch;
                } else {
                        out[o++] = '\\';
                        out[o++] = 'x';
                        out[o++] = hex[ch >> 4];
                        out[o++] = hex[ch & 15];
                }
        }
        out[o++] = '\'';
        out[o] = '\0';
        return out;
}
