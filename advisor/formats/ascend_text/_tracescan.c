/* One pass over a piece of trace_view.json ("[event, event, ...]") straight into typed columns; the
   same for a piece of a PyTorch profiler (Kineto) trace's traceEvents (`scan_kineto`, at the end).

   The C twin of `trace_view._Builder._fill` plus `_compact`, for the well-formed pieces that make up
   real files: events are routed by the kind of their pid and by ph, and only the fields a table
   reads are converted (timestamps to int64 ns, durations to float64, strings into Arrow buffers).
   Nothing else becomes a Python object.

   Anything this scanner is not sure to read exactly as the Python path does (invalid or unusual
   JSON, a malformed event, a value of an unexpected type) makes `scan` return None for the whole
   piece, and the caller decodes that piece with msgspec: the Python path stays the reference, and
   the scanner only has to be strict, never clever. UTF-8 is checked by the caller beforehand.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- growable byte buffers ---------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t extra) {
    Py_ssize_t want = b->len + extra;
    if (want <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < want) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *p, Py_ssize_t n) {
    if (b->len + n > b->cap && buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- the output layout (trace_view._RAW, checked against it at import) ---------------------- */

/* Kinds from K_TEXT on are Kineto's (see scan_kineto). */
enum { K_STR, K_NS, K_FLOAT, K_INT, K_ID, K_STACK, K_TEXT, K_LOWER, K_NS_NA, K_JSON };
static const char *KIND_NAMES[] = {"str", "ns", "float", "int", "id", "stack"};

enum { T_HOST, T_CANN, T_DEVICE, T_HCCL, T_OVERLAP, T_FREQ, T_GC, T_FLOW_START, T_FLOW_END, N_TABLES };
static const char *TABLE_NAMES[N_TABLES] = {"host_ops", "cann_api", "device_tasks", "hccl",     "overlap",
                                            "freq",     "gc",       "flow_start",   "flow_end"};
#define MAX_COLUMNS 11
static const int N_COLUMNS[N_TABLES] = {6, 4, 6, 11, 3, 2, 2, 3, 3};
static const int COLUMN_KINDS[N_TABLES][MAX_COLUMNS] = {
    {K_STR, K_STR, K_NS, K_FLOAT, K_INT, K_STACK},                                         /* host_ops */
    {K_STR, K_NS, K_FLOAT, K_INT},                                                         /* cann_api */
    {K_STR, K_STR, K_NS, K_FLOAT, K_INT, K_INT},                                           /* device */
    {K_STR, K_INT, K_INT, K_NS, K_FLOAT, K_STR, K_STR, K_STR, K_FLOAT, K_INT, K_INT},      /* hccl */
    {K_STR, K_NS, K_FLOAT},                                                                /* overlap */
    {K_NS, K_FLOAT},                                                                       /* freq */
    {K_NS, K_FLOAT},                                                                       /* gc */
    {K_STR, K_ID, K_NS},                                                                   /* flow_start */
    {K_STR, K_ID, K_NS},                                                                   /* flow_end */
};

/* Process kinds, as in trace_view (NONE: a pid without process_name). */
enum { P_OTHER, P_HOST, P_CANN, P_DEVICE, P_HCCL, P_OVERLAP, P_FREQ, P_GC, P_NONE = -1 };

typedef struct {
    int kind;
    Py_ssize_t rows, nulls;
    Buf values; /* int64 ns / int64 / double / int64 string end offsets */
    Buf text;   /* string bytes */
    Buf flags;  /* one byte per row: 1 = null (strings) or missing (ints) */
} Column;

typedef struct {
    Column columns[N_TABLES][MAX_COLUMNS];
    PyObject *threads; /* list of (pid, tid, name) from thread_name metadata */
    Py_ssize_t count;
} Out;

/* ---- parsed values -------------------------------------------------------------------------- */

enum { V_MISSING, V_NULL, V_FALSE, V_TRUE, V_STR, V_INT, V_FLOAT, V_OBJECT, V_ARRAY };

typedef struct {
    const char *p; /* strings: the first byte after the quote; numbers: the token */
    Py_ssize_t n;  /* strings: raw (escaped) length; numbers: token length */
    int type;
    int escaped; /* strings: a backslash inside */
} Val;

enum { F_PH, F_NAME, F_PID, F_TID, F_TS, F_DUR, F_CAT, F_ID, F_ARGS, N_FIELDS };
enum {
    A_CALL_STACK,
    A_TASK_TYPE,
    A_STREAM_ID,
    A_PHYSIC_STREAM_ID,
    A_TASK_ID,
    A_HCCL_TASK_TYPE,
    A_TRANSPORT,
    A_LINK,
    A_SIZE,
    A_SRC,
    A_DST,
    A_MHZ,
    A_NAME,
    N_ARGS
};

typedef struct {
    Val f[N_FIELDS];
    Val a[N_ARGS];
} Event;

typedef struct {
    const char *p, *end;
} Cursor;

#define MAX_DEPTH 64 /* deeper values are left to msgspec */

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

static inline int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* The index of the first of 8 bytes (read little-endian) that is a quote, a backslash or a control
   character (below 0x20), or 8. A borrow can mark bytes after a match, never before it. */
static inline int first_special(const char *p) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t quote = x ^ (ones * '"'), slash = x ^ (ones * '\\');
    uint64_t found = ((quote - ones) | (slash - ones) | (x - ones * 0x20)) & ~x & highs;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    return found ? __builtin_ctzll(found) >> 3 : 8;
#else
    return found ? 0 : 8; /* the byte loop below finds it */
#endif
}

/* A string at c->p (after its opening quote): strict JSON (no raw control characters, known
   escapes, surrogates in pairs). 0 on success with c->p after the closing quote. */
static int parse_string(Cursor *c, Val *v) {
    const char *p = c->p, *end = c->end;
    int escaped = 0;
    v->p = p;
    for (;;) {
        while (end - p >= 8) { /* most of a trace is plain text: skip it 8 bytes at a time */
            int at = first_special(p);
            p += at;
            if (at < 8) break;
        }
        if (p >= end) return -1;
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') break;
        if (ch < 0x20) return -1;
        if (ch == '\\') {
            escaped = 1;
            if (p + 1 >= end) return -1;
            char e = p[1];
            if (e == 'u') {
                unsigned u;
                if (p + 6 > end || hex4(p + 2, &u) < 0) return -1;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF) return -1;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned low;
                    if (p + 6 > end || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &low) < 0) return -1;
                    if (low < 0xDC00 || low > 0xDFFF) return -1;
                    p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') return -1;
            p += 2;
            continue;
        }
        p++;
    }
    v->n = p - v->p;
    v->type = V_STR;
    v->escaped = escaped;
    c->p = p + 1;
    return 0;
}

/* A number by JSON's grammar. Tokens that msgspec might read differently or refuse (mantissas over
   40 digits, exponents over 250) fail. */
static int parse_number(Cursor *c, Val *v) {
    const char *p = c->p, *end = c->end;
    v->p = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return -1;
    const char *digits = p;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else return -1;
    Py_ssize_t mantissa = p - digits;
    int is_float = 0;
    if (p < end && *p == '.') {
        p++;
        const char *frac = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == frac) return -1;
        mantissa += p - frac;
        is_float = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const char *exp = p;
        int value = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            value = value * 10 + (*p - '0');
            if (value > 250) return -1;
            p++;
        }
        if (p == exp) return -1;
        is_float = 1;
    }
    if (mantissa > 40) return -1;
    v->n = p - v->p;
    v->type = is_float ? V_FLOAT : V_INT;
    c->p = p;
    return 0;
}

static int parse_value(Cursor *c, Val *v, int depth);

static int parse_literal(Cursor *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0) return -1;
    c->p += n;
    return 0;
}

/* A key at c->p (at its quote) and the colon after it: the raw key (keys with escapes fail). */
static int parse_key(Cursor *c, Val *key) {
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    if (parse_string(c, key) < 0 || key->escaped) return -1;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') return -1;
    c->p++;
    skip_ws(c);
    return 0;
}

/* Members of an object or elements of an array, from c->p just after the opening bracket;
   `on_member` (objects) sees each key and parses its value. */
typedef int (*MemberFn)(Cursor *c, const Val *key, void *ctx, int depth);

static int skip_member(Cursor *c, const Val *key, void *ctx, int depth) {
    (void)key;
    (void)ctx;
    Val ignored;
    return parse_value(c, &ignored, depth);
}

static int parse_object(Cursor *c, int depth, MemberFn on_member, void *ctx) {
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        Val key;
        if (parse_key(c, &key) < 0 || on_member(c, &key, ctx, depth) < 0) return -1;
        skip_ws(c);
        if (c->p >= c->end) return -1;
        char ch = *c->p++;
        if (ch == '}') return 0;
        if (ch != ',') return -1;
        skip_ws(c);
    }
}

static int parse_array(Cursor *c, int depth) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        Val ignored;
        if (parse_value(c, &ignored, depth) < 0) return -1;
        skip_ws(c);
        if (c->p >= c->end) return -1;
        char ch = *c->p++;
        if (ch == ']') return 0;
        if (ch != ',') return -1;
        skip_ws(c);
    }
}

static int parse_value(Cursor *c, Val *v, int depth) {
    if (c->p >= c->end) return -1;
    v->p = c->p;
    v->escaped = 0;
    switch (*c->p) {
    case '"':
        c->p++;
        return parse_string(c, v);
    case '{':
        if (depth >= MAX_DEPTH) return -1;
        c->p++;
        v->type = V_OBJECT;
        return parse_object(c, depth + 1, skip_member, NULL);
    case '[':
        if (depth >= MAX_DEPTH) return -1;
        c->p++;
        v->type = V_ARRAY;
        return parse_array(c, depth + 1);
    case 't':
        v->type = V_TRUE;
        return parse_literal(c, "true", 4);
    case 'f':
        v->type = V_FALSE;
        return parse_literal(c, "false", 5);
    case 'n':
        v->type = V_NULL;
        return parse_literal(c, "null", 4);
    default:
        return parse_number(c, v);
    }
}

typedef struct {
    const char *name;
    Py_ssize_t n;
    int slot;
} Key;
#define KEY(literal, slot) {literal, (Py_ssize_t)sizeof(literal) - 1, slot}

static const Key FIELD_KEYS[] = {
    KEY("ph", F_PH),   KEY("name", F_NAME), KEY("pid", F_PID), KEY("tid", F_TID),   KEY("ts", F_TS),
    KEY("dur", F_DUR), KEY("cat", F_CAT),   KEY("id", F_ID),   KEY("args", F_ARGS), {NULL, 0, -1},
};
static const Key ARG_KEYS[] = {
    KEY("Call stack", A_CALL_STACK),
    KEY("Task Type", A_TASK_TYPE),
    KEY("Stream Id", A_STREAM_ID),
    KEY("Physic Stream Id", A_PHYSIC_STREAM_ID),
    KEY("Task Id", A_TASK_ID),
    KEY("task type", A_HCCL_TASK_TYPE),
    KEY("transport type", A_TRANSPORT),
    KEY("link type", A_LINK),
    KEY("size(Byte)", A_SIZE),
    KEY("src rank", A_SRC),
    KEY("dst rank", A_DST),
    KEY("MHz", A_MHZ),
    KEY("name", A_NAME),
    {NULL, 0, -1},
};

/* The slot of a key among `keys`, or -1 for a key no table reads. */
static inline int slot_of(const Key *keys, const Val *key) {
    for (; keys->name; keys++)
        if (keys->n == key->n && memcmp(keys->name, key->p, (size_t)key->n) == 0) return keys->slot;
    return -1;
}

/* The fields of one event that a format reads: its keys, and those of its args object. */
typedef struct {
    const Key *field_keys, *arg_keys;
    int n_fields, n_args, args_slot;
    Val *f, *a;
} Fields;

/* A repeated key that a table reads fails: msgspec keeps the last, and reading it twice is odd.
   Values other than strings get their raw length in `n` (their JSON text is p[0:n]). */
static int args_member(Cursor *c, const Val *key, void *ctx, int depth) {
    Fields *ev = ctx;
    int slot = slot_of(ev->arg_keys, key);
    if (slot < 0) return skip_member(c, key, NULL, depth);
    Val *v = &ev->a[slot];
    if (v->type != V_MISSING || parse_value(c, v, depth) < 0) return -1;
    if (v->type != V_STR) v->n = c->p - v->p;
    return 0;
}

static int event_member(Cursor *c, const Val *key, void *ctx, int depth) {
    Fields *ev = ctx;
    int slot = slot_of(ev->field_keys, key);
    if (slot < 0) return skip_member(c, key, NULL, depth);
    Val *v = &ev->f[slot];
    if (v->type != V_MISSING) return -1;
    if (slot == ev->args_slot && c->p < c->end && *c->p == '{') {
        v->p = c->p++;
        v->type = V_OBJECT;
        return parse_object(c, depth + 1, args_member, ev);
    }
    return parse_value(c, v, depth);
}

/* ---- converters: each appends one row to a column, or fails ------------------------------- */

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number token as a double, correctly rounded: exactly in double arithmetic when the
   mantissa and the power of ten are exact (Clinger's fast path), else by Python's own dtoa. */
static int number_to_double(const Val *v, double *out) {
    const char *p = v->p, *end = v->p + v->n;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    uint64_t mantissa = 0;
    int digits = 0, scale = 0, exp = 0, exp_negative = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (mantissa || *p != '0') {
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            digits++;
        }
        if (digits > 15) goto slow;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (mantissa || *p != '0') {
                mantissa = mantissa * 10 + (uint64_t)(*p - '0');
                digits++;
            }
            scale--;
            if (digits > 15) goto slow;
        }
    }
    if (p < end) { /* exponent */
        p++;
        if (*p == '+' || *p == '-') exp_negative = *p++ == '-';
        for (; p < end; p++) exp = exp * 10 + (*p - '0');
        scale += exp_negative ? -exp : exp;
    }
    if (scale < -22 || scale > 22) goto slow;
    double value = (double)mantissa;
    value = scale < 0 ? value / POW10[-scale] : value * POW10[scale];
    *out = negative && (value != 0 || v->type == V_FLOAT) ? -value : value; /* int -0 is 0 */
    return 0;
slow : {
    char text[64];
    if (v->n >= (Py_ssize_t)sizeof(text)) return -1;
    memcpy(text, v->p, (size_t)v->n);
    text[v->n] = '\0';
    double value = PyOS_string_to_double(text, NULL, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    *out = value;
    return 0;
}
}

/* Exact int64 ns from µs written as decimal digits (a string, or a number with at most 15
   significant digits, which Python's float repr gives back unchanged), truncated toward zero like
   trace_columns.ns_value. Anything else (exponents, spaces, signs other than '-') fails. */
static int decimal_to_ns(const char *p, const char *end, int max_significant, int64_t *out) {
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    uint64_t whole = 0;
    int any = 0, significant = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (whole || *p != '0') significant++;
        if (whole > (UINT64_MAX - 9) / 10) return -1;
        whole = whole * 10 + (uint64_t)(*p - '0');
        any = 1;
    }
    uint64_t frac = 0;
    int frac_digits = 0;
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (whole || frac || *p != '0') significant++;
            if (frac_digits < 3) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_digits++;
            }
            any = 1;
        }
    }
    if (p != end || !any || significant > max_significant) return -1;
    for (; frac_digits < 3; frac_digits++) frac *= 10;
    if (whole > ((uint64_t)INT64_MAX - frac) / 1000) return -1;
    int64_t ns = (int64_t)(whole * 1000 + frac);
    *out = negative ? -ns : ns;
    return 0;
}

static int append_ns(Column *col, const Val *v) {
    int64_t ns;
    if (v->type == V_STR) {
        if (v->escaped || decimal_to_ns(v->p, v->p + v->n, 64, &ns) < 0) return -1;
    } else if (v->type == V_INT || v->type == V_FLOAT) {
        if (decimal_to_ns(v->p, v->p + v->n, v->type == V_INT ? 64 : 15, &ns) < 0) return -1;
    } else {
        return -1;
    }
    col->rows++;
    return buf_put(&col->values, &ns, sizeof ns);
}

static int append_float(Column *col, const Val *v) {
    double value;
    if (v->type == V_INT || v->type == V_FLOAT) {
        if (number_to_double(v, &value) < 0) return -1;
    } else if (v->type == V_NULL || v->type == V_MISSING) {
        value = Py_NAN;
    } else {
        return -1;
    }
    col->rows++;
    return buf_put(&col->values, &value, sizeof value);
}

/* A row of a column with a missing flag: its int64 value (0 when missing). */
static int end_int_row(Column *col, int64_t value, char missing) {
    col->rows++;
    if (buf_put(&col->values, &value, sizeof value) < 0) return -1;
    return buf_put(&col->flags, &missing, 1);
}

/* A row of a text column whose bytes (if any) were just put into col->text. */
static int end_text_row(Column *col, char null) {
    int64_t offset = col->text.len;
    col->rows++;
    if (buf_put(&col->values, &offset, sizeof offset) < 0) return -1;
    return buf_put(&col->flags, &null, 1);
}

/* An integer token as int64; -1 beyond ±(2**63 - 1), the range trace_columns.int_array keeps. */
static int token_to_int64(const Val *v, int64_t *out) {
    const char *p = v->p, *end = v->p + v->n;
    int negative = *p == '-';
    uint64_t value = 0;
    for (p += negative; p < end; p++) {
        if (value > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10) return -1;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    *out = negative ? -(int64_t)value : (int64_t)value;
    return 0;
}

static int append_int(Column *col, const Val *v) {
    int64_t value = 0;
    char missing = 0;
    if (v->type == V_INT) {
        if (token_to_int64(v, &value) < 0) return -1;
    } else if (v->type == V_NULL || v->type == V_MISSING) {
        missing = 1;
        col->nulls++;
    } else {
        return -1;
    }
    return end_int_row(col, value, missing);
}

static inline void put_utf8(char **q, unsigned cp) {
    char *o = *q;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *q = o;
}

/* The text of a validated string, unescaped into `text` (never longer than the raw form). With
   `crlf_to_lf`, CR LF becomes LF as in trace_columns.stack_array. */
static int put_text(Buf *text, const Val *v, int crlf_to_lf) {
    if (buf_grow(text, v->n) < 0) return -1;
    if (!v->escaped) {
        memcpy(text->data + text->len, v->p, (size_t)v->n);
        text->len += v->n;
        return 0;
    }
    const char *p = v->p, *end = v->p + v->n;
    char *start = text->data + text->len, *q = start;
    while (p < end) {
        if (*p != '\\') {
            *q++ = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': *q++ = '\b'; break;
        case 'f': *q++ = '\f'; break;
        case 'n': *q++ = '\n'; break;
        case 'r': *q++ = '\r'; break;
        case 't': *q++ = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            hex4(p, &cp);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* paired by parse_string */
                unsigned low = 0xDC00;
                hex4(p + 2, &low);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            put_utf8(&q, cp);
            break;
        }
        default: *q++ = e; /* " \ / */
        }
    }
    if (crlf_to_lf) {
        char *r = start, *w = start;
        for (; r < q; r++) {
            if (*r == '\r' && r + 1 < q && r[1] == '\n') continue;
            *w++ = *r;
        }
        q = w;
    }
    text->len = q - text->data;
    return 0;
}

/* Strings, flow ids (numbers as their digits) and call stacks (non-strings are null). */
static int append_text(Column *col, const Val *v) {
    char null = 0;
    if (v->type == V_STR) {
        if (put_text(&col->text, v, col->kind == K_STACK) < 0) return -1;
    } else if (col->kind == K_ID && v->type == V_INT) {
        /* str(int("-0")) is "0" */
        int minus_zero = v->n == 2 && v->p[0] == '-' && v->p[1] == '0';
        if (buf_put(&col->text, v->p + minus_zero, v->n - minus_zero) < 0) return -1;
    } else if (v->type == V_NULL || v->type == V_MISSING || col->kind != K_STR) {
        null = 1;
        col->nulls++;
    } else {
        return -1; /* a number or object where a string belongs: the Python path says what it is */
    }
    return end_text_row(col, null);
}

static int append(Out *out, int table, int column, const Val *v) {
    Column *col = &out->columns[table][column];
    switch (col->kind) {
    case K_NS: return append_ns(col, v);
    case K_FLOAT: return append_float(col, v);
    case K_INT: return append_int(col, v);
    default: return append_text(col, v);
    }
}

/* ---- routing: trace_view._Builder._fill, event by event ------------------------------------ */

/* One key of the pid -> kind dict: a str pid (its UTF-8 in `text`) or an int pid (`text` NULL). */
typedef struct {
    const char *text;
    Py_ssize_t len;
    int64_t number;
    int kind;
} PidKind;

typedef struct {
    PidKind *entries;
    Py_ssize_t n;
} Kinds;

static int kind_of(const Kinds *kinds, const Val *pid, int *kind) {
    *kind = P_NONE;
    if (pid->type == V_INT) {
        int64_t value;
        if (token_to_int64(pid, &value) < 0) return -1; /* a pid that large: the Python path */
        for (Py_ssize_t i = 0; i < kinds->n; i++) {
            const PidKind *e = &kinds->entries[i];
            if (!e->text && e->number == value) {
                *kind = e->kind;
                break;
            }
        }
        return 0;
    }
    if (pid->type == V_STR && !pid->escaped) {
        for (Py_ssize_t i = 0; i < kinds->n; i++) {
            const PidKind *e = &kinds->entries[i];
            if (e->text && e->len == pid->n && memcmp(e->text, pid->p, (size_t)pid->n) == 0) {
                *kind = e->kind;
                break;
            }
        }
        return 0;
    }
    /* null: no process; missing, or a float or bool that a dict lookup could match: the Python path */
    return pid->type == V_NULL ? 0 : -1;
}

static inline int str_is(const Val *v, const char *text, Py_ssize_t n) {
    return v->type == V_STR && !v->escaped && v->n == n && memcmp(v->p, text, (size_t)n) == 0;
}
#define STR_IS(v, literal) str_is(v, literal, (Py_ssize_t)sizeof(literal) - 1)

/* Escaped strings that a comparison depends on are left to the Python path. */
static inline int plain(const Val *v) { return v->type != V_STR || !v->escaped; }

/* args as trace_view reads them: an object, or nothing (absent or null); else the Python path. */
static inline int args_usable(const Val *args) {
    return args->type == V_OBJECT || args->type == V_MISSING || args->type == V_NULL;
}

static PyObject *py_value(const Val *v) {
    if (v->type == V_MISSING || v->type == V_NULL) Py_RETURN_NONE;
    if (v->type == V_INT) {
        char text[64]; /* tokens have at most 40 digits */
        memcpy(text, v->p, (size_t)v->n);
        text[v->n] = '\0';
        return PyLong_FromString(text, NULL, 10);
    }
    if (v->type == V_STR) {
        Buf tmp = {0};
        if (put_text(&tmp, v, 0) < 0) return NULL;
        PyObject *s = PyUnicode_DecodeUTF8(tmp.data ? tmp.data : "", tmp.len, "strict");
        buf_free(&tmp);
        return s;
    }
    return NULL;
}

static int route(Out *out, const Kinds *kinds, const Fields *ev) {
    const Val *f = ev->f, *a = ev->a;
    int kind;
    if (kind_of(kinds, &f[F_PID], &kind) < 0) return -1;
    if (kind == P_OTHER) return 0;
    const Val *ph = &f[F_PH], *name = &f[F_NAME], *ts = &f[F_TS];
    if (ph->type == V_MISSING || !plain(ph)) return -1;
    if (ph->type != V_STR || ph->n != 1) return 0; /* not a phase any table reads */
    char phase = ph->p[0];
    if (phase == 'X') {
        int table_kind = kind == P_HOST || kind == P_CANN || kind == P_DEVICE || kind == P_HCCL;
        if (table_kind && (name->type == V_MISSING || ts->type == V_MISSING)) return -1;
        if (kind == P_HOST) {
            if (!args_usable(&f[F_ARGS])) return -1;
            if (!plain(&f[F_CAT])) return -1;
            if (STR_IS(&f[F_CAT], "GC")) {
                return append(out, T_GC, 0, ts) | append(out, T_GC, 1, &f[F_DUR]);
            }
            return append(out, T_HOST, 0, name) | append(out, T_HOST, 1, &f[F_CAT]) |
                   append(out, T_HOST, 2, ts) | append(out, T_HOST, 3, &f[F_DUR]) |
                   append(out, T_HOST, 4, &f[F_TID]) | append(out, T_HOST, 5, &a[A_CALL_STACK]);
        }
        if (kind == P_CANN) {
            return append(out, T_CANN, 0, name) | append(out, T_CANN, 1, ts) |
                   append(out, T_CANN, 2, &f[F_DUR]) | append(out, T_CANN, 3, &f[F_TID]);
        }
        if (kind == P_DEVICE) {
            if (!args_usable(&f[F_ARGS])) return -1;
            const Val *stream = &a[A_STREAM_ID];
            if (stream->type == V_MISSING || stream->type == V_NULL) /* newer torch_npu: physical only */
                stream = a[A_PHYSIC_STREAM_ID].type == V_MISSING ? &f[F_TID] : &a[A_PHYSIC_STREAM_ID];
            return append(out, T_DEVICE, 0, name) | append(out, T_DEVICE, 1, &a[A_TASK_TYPE]) |
                   append(out, T_DEVICE, 2, ts) | append(out, T_DEVICE, 3, &f[F_DUR]) |
                   append(out, T_DEVICE, 4, stream) | append(out, T_DEVICE, 5, &a[A_TASK_ID]);
        }
        if (kind == P_HCCL) {
            if (!args_usable(&f[F_ARGS])) return -1;
            return append(out, T_HCCL, 0, name) | append(out, T_HCCL, 1, &f[F_PID]) |
                   append(out, T_HCCL, 2, &f[F_TID]) | append(out, T_HCCL, 3, ts) |
                   append(out, T_HCCL, 4, &f[F_DUR]) | append(out, T_HCCL, 5, &a[A_HCCL_TASK_TYPE]) |
                   append(out, T_HCCL, 6, &a[A_TRANSPORT]) | append(out, T_HCCL, 7, &a[A_LINK]) |
                   append(out, T_HCCL, 8, &a[A_SIZE]) | append(out, T_HCCL, 9, &a[A_SRC]) |
                   append(out, T_HCCL, 10, &a[A_DST]);
        }
        if (kind == P_OVERLAP) {
            if (name->type != V_STR || name->escaped) return -1;
            if (STR_IS(name, "Computing") || STR_IS(name, "Communication") ||
                STR_IS(name, "Communication(Not Overlapped)") || STR_IS(name, "Free")) {
                if (ts->type == V_MISSING) return -1;
                return append(out, T_OVERLAP, 0, name) | append(out, T_OVERLAP, 1, ts) |
                       append(out, T_OVERLAP, 2, &f[F_DUR]);
            }
            return 0;
        }
        /* GC events may have no process: a "gc" category (any case) counts too */
        const Val *cat = &f[F_CAT];
        if (!plain(cat)) return -1;
        int gc_cat = cat->type == V_STR && cat->n == 2 && (cat->p[0] | 0x20) == 'g' && (cat->p[1] | 0x20) == 'c';
        if (kind == P_GC || gc_cat) {
            if (ts->type == V_MISSING) return -1;
            return append(out, T_GC, 0, ts) | append(out, T_GC, 1, &f[F_DUR]);
        }
        return 0;
    }
    if (phase == 's' || phase == 'f') {
        const Val *cat = &f[F_CAT];
        if (cat->type == V_OBJECT || cat->type == V_ARRAY || !plain(cat)) return -1;
        if (!STR_IS(cat, "async_npu") && !STR_IS(cat, "HostToDevice")) return 0;
        if (f[F_ID].type == V_MISSING || ts->type == V_MISSING) return -1;
        int table = phase == 's' ? T_FLOW_START : T_FLOW_END;
        return append(out, table, 0, cat) | append(out, table, 1, &f[F_ID]) | append(out, table, 2, ts);
    }
    if (phase == 'C') {
        if (kind == P_NONE && name->type == V_MISSING) return -1;
        if (!plain(name)) return -1;
        if (kind == P_FREQ || (kind == P_NONE && STR_IS(name, "AI Core Freq"))) {
            if (f[F_ARGS].type != V_OBJECT || ts->type == V_MISSING) return -1;
            return append(out, T_FREQ, 0, ts) | append(out, T_FREQ, 1, &a[A_MHZ]);
        }
        return 0;
    }
    if (phase == 'M') {
        if (!plain(name)) return -1;
        if (!STR_IS(name, "thread_name")) return 0;
        const Val *tid = &f[F_TID], *thread = &a[A_NAME];
        if (f[F_ARGS].type != V_OBJECT || thread->type != V_STR) return -1;
        if (tid->type != V_INT && tid->type != V_STR && tid->type != V_NULL && tid->type != V_MISSING)
            return -1;
        PyObject *row = Py_BuildValue("(NNN)", py_value(&f[F_PID]), py_value(tid), py_value(thread));
        if (!row) {
            PyErr_Clear();
            return -1;
        }
        int failed = PyList_Append(out->threads, row);
        Py_DECREF(row);
        if (failed) PyErr_Clear();
        return failed ? -1 : 0;
    }
    return 0;
}

/* ---- the piece ---------------------------------------------------------------------------- */

/* Every event of a piece ("[event, ...]", nothing after it) parsed into `ev` and given to `route`;
   `count` events. Anything but objects fails. */
static int scan_events(Cursor *c, Fields *ev, int (*route)(void *ctx, const Fields *ev), void *ctx,
                       Py_ssize_t *count) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '[') return -1;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
    } else {
        for (;;) {
            if (c->p >= c->end || *c->p != '{') return -1; /* not an object: the Python path skips it */
            c->p++;
            for (int i = 0; i < ev->n_fields; i++) ev->f[i].type = V_MISSING;
            for (int i = 0; i < ev->n_args; i++) ev->a[i].type = V_MISSING;
            if (parse_object(c, 1, event_member, ev) < 0 || route(ctx, ev) < 0) return -1;
            (*count)++;
            skip_ws(c);
            if (c->p >= c->end) return -1;
            char ch = *c->p++;
            if (ch == ']') break;
            if (ch != ',') return -1;
            skip_ws(c);
        }
    }
    skip_ws(c);
    return c->p == c->end ? 0 : -1;
}

typedef struct {
    Out *out;
    const Kinds *kinds;
} AscendCtx;

static int route_ascend(void *ctx, const Fields *fields) {
    AscendCtx *a = ctx;
    return route(a->out, a->kinds, fields);
}

static int scan_piece(Cursor *c, Out *out, const Kinds *kinds) {
    Event ev;
    Fields fields = {FIELD_KEYS, ARG_KEYS, N_FIELDS, N_ARGS, F_ARGS, ev.f, ev.a};
    AscendCtx ctx = {out, kinds};
    return scan_events(c, &fields, route_ascend, &ctx, &out->count);
}

static PyObject *bytes_of(const Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

/* A column as trace_view expects it from Python: see trace_view._scanned_part. */
static PyObject *column_result(Column *col) {
    if (col->kind == K_NS || col->kind == K_FLOAT) return bytes_of(&col->values);
    if (col->kind == K_INT || col->kind == K_NS_NA) {
        if (!col->nulls) return Py_BuildValue("(NO)", bytes_of(&col->values), Py_None);
        return Py_BuildValue("(NN)", bytes_of(&col->values), bytes_of(&col->flags));
    }
    /* Arrow large_string: offsets (a leading 0), data, validity bitmap (None without nulls) */
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (col->rows + 1) * 8);
    if (!offsets) return NULL;
    int64_t *o = (int64_t *)PyBytes_AS_STRING(offsets);
    o[0] = 0;
    if (col->rows) memcpy(o + 1, col->values.data, (size_t)col->rows * 8);
    PyObject *validity = Py_None;
    Py_INCREF(Py_None);
    if (col->nulls) {
        Py_DECREF(Py_None);
        validity = PyBytes_FromStringAndSize(NULL, (col->rows + 7) / 8);
        if (!validity) {
            Py_DECREF(offsets);
            return NULL;
        }
        unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(validity);
        memset(bits, 0, (size_t)(col->rows + 7) / 8);
        for (Py_ssize_t i = 0; i < col->rows; i++)
            if (!col->flags.data[i]) bits[i >> 3] |= (unsigned char)(1u << (i & 7));
    }
    return Py_BuildValue("(NNNn)", offsets, bytes_of(&col->text), validity, col->nulls);
}

/* Per table (row `t` of `columns`, `stride` columns apart) a tuple of its columns, None without rows. */
static PyObject *tables_result(Column *columns, int n_tables, int stride, const int *n_columns) {
    PyObject *tables = PyTuple_New(n_tables);
    if (!tables) return NULL;
    for (int t = 0; t < n_tables; t++) {
        Column *table = columns + (Py_ssize_t)t * stride;
        PyObject *item;
        if (!table[0].rows) {
            item = Py_None;
            Py_INCREF(item);
        } else {
            item = PyTuple_New(n_columns[t]);
            if (!item) goto fail;
            for (int k = 0; k < n_columns[t]; k++) {
                PyObject *col = column_result(&table[k]);
                if (!col) {
                    Py_DECREF(item);
                    goto fail;
                }
                PyTuple_SET_ITEM(item, k, col);
            }
        }
        PyTuple_SET_ITEM(tables, t, item);
    }
    return tables;
fail:
    Py_DECREF(tables);
    return NULL;
}

static void free_columns(Column *columns, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        buf_free(&columns[i].values);
        buf_free(&columns[i].text);
        buf_free(&columns[i].flags);
    }
}

static PyObject *result_of(Out *out) {
    PyObject *tables = tables_result(&out->columns[0][0], N_TABLES, MAX_COLUMNS, N_COLUMNS);
    return tables ? Py_BuildValue("(nNO)", out->count, tables, out->threads) : NULL;
}

static int load_kinds(PyObject *dict, Kinds *kinds) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    kinds->entries = PyMem_Calloc((size_t)PyDict_Size(dict) + 1, sizeof(PidKind));
    if (!kinds->entries) {
        PyErr_NoMemory();
        return -1;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        PidKind *e = &kinds->entries[kinds->n];
        long kind = PyLong_AsLong(value);
        if (kind == -1 && PyErr_Occurred()) return -1;
        e->kind = (int)kind;
        if (PyLong_Check(key)) {
            int overflow;
            long long pid = PyLong_AsLongLongAndOverflow(key, &overflow);
            if (overflow || (pid == -1 && PyErr_Occurred())) continue; /* kind_of leaves those to Python */
            e->number = pid;
        } else if (PyUnicode_Check(key)) {
            e->text = PyUnicode_AsUTF8AndSize(key, &e->len);
            if (!e->text) return -1;
        } else {
            continue;
        }
        kinds->n++;
    }
    return 0;
}

PyDoc_STRVAR(scan_doc, "scan(piece, kinds, /)\n--\n\n"
                       "The events of `piece` (bytes of one JSON array) as typed table columns, or None when\n"
                       "the piece needs the Python path. `kinds` maps pid -> process kind.\n"
                       "Returns (events, tables, threads).");

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer piece;
    PyObject *kinds_dict;
    if (!PyArg_ParseTuple(args, "y*O!:scan", &piece, &PyDict_Type, &kinds_dict)) return NULL;
    Kinds kinds = {0};
    Out *out = PyMem_Calloc(1, sizeof(Out));
    PyObject *result = NULL;
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    if (load_kinds(kinds_dict, &kinds) < 0) goto done;
    out->threads = PyList_New(0);
    if (!out->threads) goto done;
    for (int t = 0; t < N_TABLES; t++)
        for (int k = 0; k < N_COLUMNS[t]; k++) out->columns[t][k].kind = COLUMN_KINDS[t][k];
    Cursor cursor = {piece.buf, (const char *)piece.buf + piece.len};
    int failed = scan_piece(&cursor, out, &kinds);
    if (PyErr_Occurred()) goto done; /* out of memory */
    if (failed) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = result_of(out);
    }
done:
    if (out) {
        free_columns(&out->columns[0][0], N_TABLES * MAX_COLUMNS);
        Py_XDECREF(out->threads);
        PyMem_Free(out);
    }
    PyMem_Free(kinds.entries);
    PyBuffer_Release(&piece);
    return result;
}


/* ---- Kineto (PyTorch profiler) pieces: kineto/events.py's _Columns.add_events ------------------ */

/* Its column kinds beyond trace_view's: K_TEXT (strings; numbers as their JSON token, the text the
   Python path's float_hook=str and str(int) give), K_LOWER (the same, lower-cased), K_NS_NA (ns with
   missing values) and K_JSON (compact JSON text: what msgspec.json.encode gives for the value). */

enum { KT_X, KT_INSTANTS, KT_FLOWS, KT_THREADS, N_KTABLES };
static const char *KTABLE_NAMES[N_KTABLES] = {"x", "instants", "flows", "threads"};
#define KMAX_COLUMNS 23
static const int KN_COLUMNS[N_KTABLES] = {23, 8, 6, 4};
static const int KCOLUMN_KINDS[N_KTABLES][KMAX_COLUMNS] = {
    {K_LOWER, K_TEXT, K_TEXT, K_TEXT, K_NS_NA, K_FLOAT, K_INT, K_INT, K_INT, K_INT, K_FLOAT, K_TEXT,
     K_INT, K_INT, K_TEXT, K_INT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_JSON, K_JSON}, /* x */
    {K_NS_NA, K_TEXT, K_TEXT, K_FLOAT, K_FLOAT, K_FLOAT, K_INT, K_INT},                 /* instants */
    {K_TEXT, K_LOWER, K_INT, K_TEXT, K_TEXT, K_NS_NA},                                 /* flows */
    {K_TEXT, K_TEXT, K_TEXT, K_TEXT},                                                  /* threads */
};

/* A column kind as events.py names the converter of its Python path. */
static const char *kineto_kind_name(int kind) {
    switch (kind) {
    case K_NS_NA: return "ns";
    case K_FLOAT: return "float";
    case K_INT: return "int";
    default: return "str";
    }
}

enum { KF_PH, KF_CAT, KF_NAME, KF_PID, KF_TID, KF_TS, KF_DUR, KF_ID, KF_ARGS, N_KFIELDS };
enum {
    KA_CORRELATION,
    KA_EXTERNAL_ID,
    KA_EXTERNAL_ID_OLD,
    KA_STREAM,
    KA_DEVICE,
    KA_BYTES,
    KA_MEMORY_BYTES,
    KA_COLLECTIVE,
    KA_IN_NELEMS,
    KA_OUT_NELEMS,
    KA_DTYPE,
    KA_GROUP_SIZE,
    KA_PG_NAME,
    KA_PG_DESC,
    KA_PG_RANKS,
    KA_SYNC_KIND,
    KA_CALL_STACK,
    KA_INPUT_DIMS,
    KA_INPUT_TYPE,
    KA_TOTAL_ALLOCATED,
    KA_TOTAL_RESERVED,
    KA_DEVICE_TYPE,
    KA_DEVICE_ID,
    KA_NAME,
    KA_LABELS,
    N_KARGS
};

static const Key KFIELD_KEYS[] = {
    KEY("ph", KF_PH),   KEY("cat", KF_CAT), KEY("name", KF_NAME), KEY("pid", KF_PID),   KEY("tid", KF_TID),
    KEY("ts", KF_TS),   KEY("dur", KF_DUR), KEY("id", KF_ID),     KEY("args", KF_ARGS), {NULL, 0, -1},
};
static const Key KARG_KEYS[] = {
    KEY("correlation", KA_CORRELATION),
    KEY("External id", KA_EXTERNAL_ID),
    KEY("external id", KA_EXTERNAL_ID_OLD),
    KEY("stream", KA_STREAM),
    KEY("device", KA_DEVICE),
    KEY("bytes", KA_BYTES),
    KEY("Bytes", KA_MEMORY_BYTES),
    KEY("Collective name", KA_COLLECTIVE),
    KEY("In msg nelems", KA_IN_NELEMS),
    KEY("Out msg nelems", KA_OUT_NELEMS),
    KEY("dtype", KA_DTYPE),
    KEY("Group size", KA_GROUP_SIZE),
    KEY("Process Group Name", KA_PG_NAME),
    KEY("Process Group Description", KA_PG_DESC),
    KEY("Process Group Ranks", KA_PG_RANKS),
    KEY("cuda_sync_kind", KA_SYNC_KIND),
    KEY("Call stack", KA_CALL_STACK),
    KEY("Input Dims", KA_INPUT_DIMS),
    KEY("Input type", KA_INPUT_TYPE),
    KEY("Total Allocated", KA_TOTAL_ALLOCATED),
    KEY("Total Reserved", KA_TOTAL_RESERVED),
    KEY("Device Type", KA_DEVICE_TYPE),
    KEY("Device Id", KA_DEVICE_ID),
    KEY("name", KA_NAME),
    KEY("labels", KA_LABELS),
    {NULL, 0, -1},
};

typedef struct {
    Column columns[N_KTABLES][KMAX_COLUMNS];
    Py_ssize_t count;
} KOut;

static inline int is_null(const Val *v) { return v->type == V_NULL || v->type == V_MISSING; }

/* Compact JSON text of a raw value (whitespace outside strings dropped), as msgspec re-encodes the
   decoded value; anything it would write differently (escapes, floats, which the Python path keeps
   as strings, "-0", objects, whose repeated keys a dict merges) fails. */
static int put_compact_json(Buf *text, const char *p, const char *end) {
    if (buf_grow(text, end - p) < 0) return -1;
    char *q = text->data + text->len;
    int in_string = 0;
    for (; p < end; p++) {
        char ch = *p;
        if (in_string) {
            if (ch == '\\') return -1;
            if (ch == '"') in_string = 0;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            continue;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '.' || ch == 'e' || ch == 'E' || ch == '{') {
            return -1;
        } else if (ch == '-' && p + 1 < end && p[1] == '0' && (p + 2 == end || p[2] < '0' || p[2] > '9')) {
            return -1;
        }
        *q++ = ch;
    }
    text->len = q - text->data;
    return 0;
}

/* Text columns: strings (lower-cased ASCII for K_LOWER), numbers as their token, null when absent. */
static int append_ktext(Column *col, const Val *v) {
    char null = 0;
    if (is_null(v)) {
        null = 1;
        col->nulls++;
    } else if (col->kind == K_JSON) {
        const char *start = v->type == V_STR ? v->p - 1 : v->p;
        const char *end = v->type == V_STR ? v->p + v->n + 1 : v->p + v->n;
        if ((v->type == V_STR && v->escaped) || put_compact_json(&col->text, start, end) < 0) return -1;
    } else if (v->type == V_STR) {
        if (col->kind == K_LOWER) { /* str.lower() of ASCII; other text is left to the Python path */
            if (v->escaped || buf_grow(&col->text, v->n) < 0) return -1;
            char *q = col->text.data + col->text.len;
            for (Py_ssize_t i = 0; i < v->n; i++) {
                unsigned char ch = (unsigned char)v->p[i];
                if (ch >= 0x80) return -1;
                q[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
            col->text.len += v->n;
        } else if (put_text(&col->text, v, 0) < 0) {
            return -1;
        }
    } else if (v->type == V_INT || v->type == V_FLOAT) {
        /* str(int("-0")) is "0" */
        int minus_zero = v->type == V_INT && v->n == 2 && v->p[0] == '-' && v->p[1] == '0';
        if (buf_put(&col->text, v->p + minus_zero, v->n - minus_zero) < 0) return -1;
    } else {
        return -1; /* a bool, object or array: the Python path says what it becomes */
    }
    return end_text_row(col, null);
}

/* Exact ns from a µs number or digit string (events.ns_values), missing when absent. */
static int append_ns_na(Column *col, const Val *v) {
    int64_t ns = 0;
    char missing = 0;
    if (is_null(v)) {
        missing = 1;
        col->nulls++;
    } else if ((v->type != V_INT && v->type != V_FLOAT && (v->type != V_STR || v->escaped)) ||
               decimal_to_ns(v->p, v->p + v->n, 64, &ns) < 0) {
        return -1;
    }
    return end_int_row(col, ns, missing);
}

static int kappend(KOut *out, int table, int column, const Val *v) {
    Column *col = &out->columns[table][column];
    switch (col->kind) {
    case K_NS_NA: return append_ns_na(col, v);
    case K_FLOAT: return append_float(col, v);
    case K_INT: return v->type == V_FLOAT ? -1 : append_int(col, v);
    default: return append_ktext(col, v);
    }
}

/* Appends `n` values to the columns of `table`, in order. */
static int kappend_row(KOut *out, int table, const Val *const *values, int n) {
    int failed = 0;
    for (int k = 0; k < n; k++) failed |= kappend(out, table, k, values[k]);
    return failed;
}

static int route_kineto(void *ctx, const Fields *ev) {
    KOut *out = ctx;
    const Val *f = ev->f, *a = ev->a, *ph = &f[KF_PH], *name = &f[KF_NAME];
    if (ph->type != V_STR) return 0; /* no phase any table reads */
    if (ph->escaped) return -1;
    if (ph->n != 1) return 0;
    switch (ph->p[0]) {
    case 'X': {
        const Val *external = is_null(&a[KA_EXTERNAL_ID]) ? &a[KA_EXTERNAL_ID_OLD] : &a[KA_EXTERNAL_ID];
        const Val *row[] = {
            &f[KF_CAT],          &f[KF_NAME],       &f[KF_PID],           &f[KF_TID],        &f[KF_TS],
            &f[KF_DUR],          &a[KA_CORRELATION], external,            &a[KA_STREAM],     &a[KA_DEVICE],
            &a[KA_BYTES],        &a[KA_COLLECTIVE], &a[KA_IN_NELEMS],     &a[KA_OUT_NELEMS], &a[KA_DTYPE],
            &a[KA_GROUP_SIZE],   &a[KA_PG_NAME],    &a[KA_PG_DESC],       &a[KA_PG_RANKS],   &a[KA_SYNC_KIND],
            &a[KA_CALL_STACK],   &a[KA_INPUT_DIMS], &a[KA_INPUT_TYPE],
        };
        return kappend_row(out, KT_X, row, KN_COLUMNS[KT_X]);
    }
    case 'i':
    case 'I': {
        if (!plain(name)) return -1;
        if (!STR_IS(name, "[memory]")) return 0;
        const Val *row[] = {
            &f[KF_TS],           &f[KF_PID],          &f[KF_TID],          &a[KA_MEMORY_BYTES],
            &a[KA_TOTAL_ALLOCATED], &a[KA_TOTAL_RESERVED], &a[KA_DEVICE_TYPE], &a[KA_DEVICE_ID],
        };
        return kappend_row(out, KT_INSTANTS, row, KN_COLUMNS[KT_INSTANTS]);
    }
    case 's':
    case 'f': {
        const Val *row[] = {ph, &f[KF_CAT], &f[KF_ID], &f[KF_PID], &f[KF_TID], &f[KF_TS]};
        return kappend_row(out, KT_FLOWS, row, KN_COLUMNS[KT_FLOWS]);
    }
    case 'M': {
        if (!plain(name)) return -1;
        int labels = STR_IS(name, "process_labels");
        if (!labels && !STR_IS(name, "process_name") && !STR_IS(name, "thread_name")) return 0;
        const Val *row[] = {name, &f[KF_PID], &f[KF_TID], labels ? &a[KA_LABELS] : &a[KA_NAME]};
        return kappend_row(out, KT_THREADS, row, KN_COLUMNS[KT_THREADS]);
    }
    default: return 0;
    }
}

PyDoc_STRVAR(scan_kineto_doc, "scan_kineto(piece, /)\n--\n\n"
                              "The events of `piece` (bytes of one JSON array of a Kineto trace) as\n"
                              "the columns of kineto/events.py, or None when the piece needs the\n"
                              "Python path. Returns (events, tables).");

static PyObject *scan_kineto(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer piece;
    if (!PyArg_ParseTuple(args, "y*:scan_kineto", &piece)) return NULL;
    PyObject *result = NULL;
    KOut *out = PyMem_Calloc(1, sizeof(KOut));
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    for (int t = 0; t < N_KTABLES; t++)
        for (int k = 0; k < KN_COLUMNS[t]; k++) out->columns[t][k].kind = KCOLUMN_KINDS[t][k];
    Val f[N_KFIELDS], a[N_KARGS];
    Fields fields = {KFIELD_KEYS, KARG_KEYS, N_KFIELDS, N_KARGS, KF_ARGS, f, a};
    Cursor cursor = {piece.buf, (const char *)piece.buf + piece.len};
    int failed = scan_events(&cursor, &fields, route_kineto, out, &out->count);
    if (PyErr_Occurred()) goto done; /* out of memory */
    if (failed) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        PyObject *tables = tables_result(&out->columns[0][0], N_KTABLES, KMAX_COLUMNS, KN_COLUMNS);
        result = tables ? Py_BuildValue("(nN)", out->count, tables) : NULL;
    }
done:
    if (out) {
        free_columns(&out->columns[0][0], N_KTABLES * KMAX_COLUMNS);
        PyMem_Free(out);
    }
    PyBuffer_Release(&piece);
    return result;
}

static PyMethodDef methods[] = {{"scan", scan, METH_VARARGS, scan_doc},
                                {"scan_kineto", scan_kineto, METH_VARARGS, scan_kineto_doc},
                                {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_tracescan",
    .m_doc = "C scanner for pieces of trace_view.json and Kineto traces (see _tracescan.c).",
    .m_size = -1,
    .m_methods = methods,
};

static const char *ascend_kind_name(int kind) { return KIND_NAMES[kind]; }

/* ((table, (kind name, ...)), ...) of a column layout (`kinds` rows `stride` apart). */
static PyObject *layout_of(const char *const *tables, int n_tables, const int *kinds, int stride,
                           const int *n_columns, const char *(*kind_name)(int)) {
    PyObject *layout = PyTuple_New(n_tables);
    if (!layout) return NULL;
    for (int t = 0; t < n_tables; t++) {
        PyObject *names = PyTuple_New(n_columns[t]);
        if (!names) {
            Py_DECREF(layout);
            return NULL;
        }
        for (int k = 0; k < n_columns[t]; k++)
            PyTuple_SET_ITEM(names, k, PyUnicode_FromString(kind_name(kinds[t * stride + k])));
        PyTuple_SET_ITEM(layout, t, Py_BuildValue("(sN)", tables[t], names));
    }
    return layout;
}

PyMODINIT_FUNC PyInit__tracescan(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* LAYOUT: ((table, (column kind, ...)), ...), for trace_view to check against its own;
       KINETO_LAYOUT the same for kineto/events.py's COLUMNS (kinds as its converters name them). */
    PyObject *layout =
        layout_of(TABLE_NAMES, N_TABLES, COLUMN_KINDS[0], MAX_COLUMNS, N_COLUMNS, ascend_kind_name);
    if (!layout || PyModule_AddObject(m, "LAYOUT", layout) < 0) {
        Py_XDECREF(layout);
        goto fail;
    }
    PyObject *kineto =
        layout_of(KTABLE_NAMES, N_KTABLES, KCOLUMN_KINDS[0], KMAX_COLUMNS, KN_COLUMNS, kineto_kind_name);
    if (!kineto || PyModule_AddObject(m, "KINETO_LAYOUT", kineto) < 0) {
        Py_XDECREF(kineto);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
