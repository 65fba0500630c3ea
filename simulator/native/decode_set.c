/* The decode set of one scheduler loop, compiled: the same class, methods and results as the
 * pure-Python ``simulator.engine.decode_set.PyDecodeSet`` (the reference; read its docstrings).
 *
 * Members' columns live in C arrays owned by the object; the request columns it reads and writes
 * back (``Requests.kv`` ...), the pool's ``held`` and the ITL log's ``row0``/``last0`` are numpy
 * arrays held through the buffer protocol for the object's lifetime. Every operation is a loop over
 * the members (tens of them), so a call costs well under a microsecond where the numpy version makes
 * a dozen numpy calls. Integer arithmetic is exact and each float result is one IEEE operation of the
 * same operands in the same order as numpy's, so both classes give bit-identical simulations.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NONE_LEFT (((int64_t)1) << 62)

static PyObject *np_empty, *np_ascontig, *dt_i64, *dt_f64, *dt_bool;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, cap;
    int64_t *ids, *kv, *off, *end, *held;
    double *last, *maxitl;
    int64_t kv_sum, held_sum, left_min, bs;
    Py_ssize_t loop;
    PyObject *pool, *itl, *counts;          /* the block pool, the ITL log, its rows-per-loop list */
    Py_buffer b_kv, b_gen, b_out, b_lt, b_mi, b_held, b_row0, b_last0;
    int nbuf;                               /* buffers acquired so far (for dealloc) */
} DS;

/* numpy's maximum: a NaN operand is returned (the first if both are). */
static inline double npmax(double a, double b) { return (a != a) ? a : ((b != b) ? b : (a >= b ? a : b)); }

/* A numpy column of ``owner`` held for the object's lifetime (written to unless ``readonly``). */
static int column(PyObject *owner, const char *name, Py_buffer *view, Py_ssize_t itemsize, int readonly) {
    PyObject *arr = PyObject_GetAttrString(owner, name);
    if (!arr) return -1;
    int rc = PyObject_GetBuffer(arr, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (readonly ? 0 : PyBUF_WRITABLE));
    Py_DECREF(arr);
    if (rc < 0) return -1;
    if (view->itemsize != itemsize || view->ndim != 1) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "decode set: column %s has items of %zd bytes, expected %zd",
                     name, view->itemsize, itemsize);
        return -1;
    }
    return 0;
}

/* A read-only C-contiguous view of ``obj`` as int64 / float64 / bool; *tmp holds a converted copy. */
static int view_as(PyObject *obj, PyObject *dtype, char kind, Py_buffer *v, PyObject **tmp) {
    *tmp = NULL;
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0) {
        char f = v->format[0];
        if (f == '<' || f == '=' || f == '@') f = v->format[1];
        int ok = v->ndim <= 1 && ((kind == 'i' && v->itemsize == 8 && (f == 'q' || f == 'l')) ||
                                  (kind == 'd' && v->itemsize == 8 && f == 'd') ||
                                  (kind == '?' && v->itemsize == 1 && f == '?'));
        if (ok) return 0;
        PyBuffer_Release(v);
    } else {
        PyErr_Clear();
    }
    *tmp = PyObject_CallFunctionObjArgs(np_ascontig, obj, dtype, NULL);
    if (!*tmp) return -1;
    if (PyObject_GetBuffer(*tmp, v, PyBUF_C_CONTIGUOUS) < 0) { Py_CLEAR(*tmp); return -1; }
    return 0;
}

static void unview(Py_buffer *v, PyObject *tmp) { PyBuffer_Release(v); Py_XDECREF(tmp); }

/* A new numpy array of ``n`` items of ``dtype``; *data points at its items. */
static PyObject *new_array(Py_ssize_t n, PyObject *dtype, void **data) {
    PyObject *arr = PyObject_CallFunction(np_empty, "nO", n, dtype);
    if (!arr) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) { Py_DECREF(arr); return NULL; }
    *data = v.buf;
    PyBuffer_Release(&v);   /* the array owns its memory; the pointer stays valid while it lives */
    return arr;
}

static int reserve_cap(DS *s, Py_ssize_t need) {
    if (need <= s->cap) return 0;
    Py_ssize_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    int64_t **ip[] = {&s->ids, &s->kv, &s->off, &s->end, &s->held};
    for (int i = 0; i < 5; i++) {
        void *p = PyMem_Realloc(*ip[i], cap * sizeof(int64_t));
        if (!p) { PyErr_NoMemory(); return -1; }
        *ip[i] = p;
    }
    double **dp[] = {&s->last, &s->maxitl};
    for (int i = 0; i < 2; i++) {
        void *p = PyMem_Realloc(*dp[i], cap * sizeof(double));
        if (!p) { PyErr_NoMemory(); return -1; }
        *dp[i] = p;
    }
    s->cap = cap;
    return 0;
}

#define I64(b) ((int64_t *)(b).buf)
#define F64(b) ((double *)(b).buf)

static void recompute_totals(DS *s) {
    int64_t ks = 0, hs = 0, lm = NONE_LEFT;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        ks += s->kv[i];
        hs += s->held[i];
        int64_t l = s->end[i] - s->kv[i];
        if (l < lm) lm = l;
    }
    s->kv_sum = ks; s->held_sum = hs; s->left_min = lm;
}

/* ---- construction ----------------------------------------------------------------------- */
static void DS_dealloc(DS *s) {
    Py_buffer *bufs[] = {&s->b_kv, &s->b_gen, &s->b_out, &s->b_lt, &s->b_mi, &s->b_held, &s->b_row0, &s->b_last0};
    for (int i = 0; i < s->nbuf; i++) PyBuffer_Release(bufs[i]);
    PyMem_Free(s->ids); PyMem_Free(s->kv); PyMem_Free(s->off); PyMem_Free(s->end); PyMem_Free(s->held);
    PyMem_Free(s->last); PyMem_Free(s->maxitl);
    Py_XDECREF(s->pool); Py_XDECREF(s->itl); Py_XDECREF(s->counts);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int DS_init(DS *s, PyObject *args, PyObject *kw) {
    PyObject *reqs, *pool, *itl;
    Py_ssize_t loop;
    static char *names[] = {"reqs", "pool", "itl", "loop", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOn", names, &reqs, &pool, &itl, &loop)) return -1;
    if (s->nbuf) { PyErr_SetString(PyExc_RuntimeError, "decode set initialised twice"); return -1; }
    struct { PyObject *owner; const char *name; Py_buffer *view; int readonly; } cols[] = {
        {reqs, "kv", &s->b_kv, 0}, {reqs, "generated", &s->b_gen, 0}, {reqs, "output", &s->b_out, 1},
        {reqs, "last_token", &s->b_lt, 0}, {reqs, "max_itl", &s->b_mi, 0}, {pool, "held", &s->b_held, 0},
        {itl, "row0", &s->b_row0, 0}, {itl, "last0", &s->b_last0, 0}};
    for (int i = 0; i < 8; i++) {
        if (column(cols[i].owner, cols[i].name, cols[i].view, 8, cols[i].readonly) < 0) return -1;
        s->nbuf++;
    }
    PyObject *bs = PyObject_GetAttrString(pool, "block_size");
    if (!bs) return -1;
    s->bs = PyLong_AsLongLong(bs);
    Py_DECREF(bs);
    if (s->bs < 1) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "block_size must be >= 1"); return -1; }
    s->counts = PyObject_GetAttrString(itl, "counts");
    if (!s->counts) return -1;
    if (!PyList_Check(s->counts)) { PyErr_SetString(PyExc_TypeError, "itl.counts must be a list"); return -1; }
    Py_INCREF(pool); s->pool = pool;
    Py_INCREF(itl); s->itl = itl;
    s->loop = loop;
    s->left_min = NONE_LEFT;
    return 0;
}

/* ---- members joining and leaving ---------------------------------------------------------- */
static PyObject *DS_add(DS *s, PyObject *arg) {
    Py_buffer v; PyObject *tmp;
    if (view_as(arg, dt_i64, 'i', &v, &tmp) < 0) return NULL;
    Py_ssize_t k = v.len / 8;
    const int64_t *ids = v.buf;
    if (reserve_cap(s, s->n + k) < 0) { unview(&v, tmp); return NULL; }
    PyObject *row = PyList_GetItem(s->counts, s->loop);
    int64_t row0 = row ? PyLong_AsLongLong(row) : -1;
    if (PyErr_Occurred()) { unview(&v, tmp); return NULL; }
    int64_t *rkv = I64(s->b_kv), *rgen = I64(s->b_gen), *rout = I64(s->b_out), *pheld = I64(s->b_held);
    double *rlt = F64(s->b_lt), *rmi = F64(s->b_mi);
    Py_ssize_t nreq = s->b_kv.len / 8;
    for (Py_ssize_t j = 0; j < k; j++) {   /* all checked before any is added */
        if (ids[j] < 0 || ids[j] >= nreq) {
            PyErr_Format(PyExc_IndexError, "request %lld out of range", (long long)ids[j]);
            unview(&v, tmp);
            return NULL;
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t r = ids[j];
        Py_ssize_t i = s->n + j;
        int64_t kv = rkv[r], off = rgen[r] - kv, end = rout[r] - off;
        s->ids[i] = r; s->kv[i] = kv; s->off[i] = off; s->end[i] = end; s->held[i] = pheld[r];
        s->last[i] = rlt[r]; s->maxitl[i] = rmi[r];
        s->kv_sum += kv; s->held_sum += pheld[r];
        if (end - kv < s->left_min) s->left_min = end - kv;
        I64(s->b_row0)[r] = row0;            /* the ITL log: the row it joined at, its last token then */
        F64(s->b_last0)[r] = rlt[r];
    }
    s->n += k;
    unview(&v, tmp);
    Py_RETURN_NONE;
}

/* Members with mask[i] (or all if mask is NULL) write back and leave; returns their ids. */
static PyObject *take_out(DS *s, const char *mask, int leave) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) k += mask ? (mask[i] != 0) : 1;
    int64_t *out;
    PyObject *arr = new_array(k, dt_i64, (void **)&out);
    if (!arr) return NULL;
    int64_t *rkv = I64(s->b_kv), *rgen = I64(s->b_gen), *pheld = I64(s->b_held);
    double *rlt = F64(s->b_lt), *rmi = F64(s->b_mi);
    Py_ssize_t j = 0, w = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        if (mask && !mask[i]) {
            if (leave && w != i) {
                s->ids[w] = s->ids[i]; s->kv[w] = s->kv[i]; s->off[w] = s->off[i]; s->end[w] = s->end[i];
                s->held[w] = s->held[i]; s->last[w] = s->last[i]; s->maxitl[w] = s->maxitl[i];
            }
            w++;
            continue;
        }
        int64_t r = s->ids[i];
        rkv[r] = s->kv[i]; rgen[r] = s->kv[i] + s->off[i]; rlt[r] = s->last[i]; rmi[r] = s->maxitl[i];
        pheld[r] = s->held[i];
        out[j++] = r;
    }
    if (leave) {
        s->n = w;
        recompute_totals(s);
        PyObject *res = PyObject_CallMethod(s->itl, "leave", "On", arr, s->loop);
        if (!res) { Py_DECREF(arr); return NULL; }
        Py_DECREF(res);
    }
    return arr;
}

static int mask_arg(DS *s, PyObject *arg, Py_buffer *v, PyObject **tmp) {
    if (view_as(arg, dt_bool, '?', v, tmp) < 0) return -1;
    if (v->len != s->n) {
        unview(v, *tmp);
        PyErr_Format(PyExc_ValueError, "mask of %zd items for a decode set of %zd", v->len, s->n);
        return -1;
    }
    return 0;
}

/* take_out with the members a boolean array selects. */
static PyObject *take_out_masked(DS *s, PyObject *mask, int leave) {
    Py_buffer v; PyObject *tmp;
    if (mask_arg(s, mask, &v, &tmp) < 0) return NULL;
    PyObject *res = take_out(s, v.buf, leave);
    unview(&v, tmp);
    return res;
}

static PyObject *DS_remove(DS *s, PyObject *arg) { return take_out_masked(s, arg, 1); }

static PyObject *DS_write_back(DS *s, PyObject *args) {
    PyObject *sel = NULL;
    if (!PyArg_ParseTuple(args, "|O", &sel)) return NULL;
    if (!sel || sel == Py_None || PySlice_Check(sel)) {
        if (sel && PySlice_Check(sel)) {
            Py_ssize_t a, b, st, len;
            if (PySlice_GetIndicesEx(sel, s->n, &a, &b, &st, &len) < 0) return NULL;
            if (a != 0 || st != 1 || len != s->n) {
                PyErr_SetString(PyExc_ValueError, "write_back takes a mask or the whole set");
                return NULL;
            }
        }
        return take_out(s, NULL, 0);
    }
    return take_out_masked(s, sel, 0);
}

static PyObject *DS_remove_finished(DS *s, PyObject *unused) {
    char small[256];
    char *mask = s->n <= 256 ? small : PyMem_Malloc(s->n);
    if (!mask) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < s->n; i++) mask[i] = s->kv[i] >= s->end[i];
    PyObject *res = take_out(s, mask, 1);
    if (mask != small) PyMem_Free(mask);
    return res;
}

/* ---- KV blocks ------------------------------------------------------------------------------ */
static inline int64_t blocks_after(DS *s, Py_ssize_t i, int64_t steps) {
    return (s->kv[i] + (steps + s->bs - 1)) / s->bs;   /* numerator >= 0: C division is floor */
}

static PyObject *DS_extra_blocks(DS *s, PyObject *arg) {
    int64_t steps = PyLong_AsLongLong(arg);
    if (steps == -1 && PyErr_Occurred()) return NULL;
    int64_t tot = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int64_t b = blocks_after(s, i, steps);
        tot += b > s->held[i] ? b : s->held[i];
    }
    return PyLong_FromLongLong(tot - s->held_sum);
}

static int64_t pool_free(DS *s, int *err) {
    PyObject *f = PyObject_GetAttrString(s->pool, "free");
    if (!f) { *err = 1; return 0; }
    int64_t v = PyLong_AsLongLong(f);
    Py_DECREF(f);
    if (v == -1 && PyErr_Occurred()) *err = 1;
    return v;
}

/* Raise each member's blocks to target[i] (never below those held); 0 if the pool is short, -1 on error. */
static int hold_blocks(DS *s, const int64_t *target, int64_t steps, int check) {
    int64_t tot = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int64_t b = target ? target[i] : blocks_after(s, i, steps);
        tot += b > s->held[i] ? b : s->held[i];
    }
    int64_t extra = tot - s->held_sum;
    if (check) {
        int err = 0;
        int64_t free = pool_free(s, &err);
        if (err) return -1;
        if (extra > free) return 0;
    }
    if (extra) {
        PyObject *r = PyObject_CallMethod(s->pool, "take", "L", (long long)extra);
        if (!r) return -1;
        Py_DECREF(r);
        for (Py_ssize_t i = 0; i < s->n; i++) {
            int64_t b = target ? target[i] : blocks_after(s, i, steps);
            if (b > s->held[i]) s->held[i] = b;
        }
        s->held_sum += extra;
    }
    return 1;
}

static PyObject *DS_reserve(DS *s, PyObject *arg) {
    int64_t steps = PyLong_AsLongLong(arg);
    if (steps == -1 && PyErr_Occurred()) return NULL;
    int ok = hold_blocks(s, NULL, steps, 1);
    if (ok < 0) return NULL;
    return PyBool_FromLong(ok);
}

static PyObject *DS_hold(DS *s, PyObject *arg) {
    Py_buffer v; PyObject *tmp;
    if (view_as(arg, dt_i64, 'i', &v, &tmp) < 0) return NULL;
    if (v.len / 8 != s->n) {
        unview(&v, tmp);
        PyErr_Format(PyExc_ValueError, "target of %zd items for a decode set of %zd", v.len / 8, s->n);
        return NULL;
    }
    int ok = hold_blocks(s, v.buf, 0, 1);
    unview(&v, tmp);
    if (ok < 0) return NULL;
    return PyBool_FromLong(ok);
}

static PyObject *DS_grow(DS *s, PyObject *unused) {
    if (hold_blocks(s, NULL, 0, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---- steps ------------------------------------------------------------------------------------ */
static PyObject *DS_ctx_sums(DS *s, PyObject *args) {
    long long extra, q = 1;
    PyObject *window;
    if (!PyArg_ParseTuple(args, "LO|L", &extra, &window, &q)) return NULL;
    double tot = (double)(s->kv_sum + (int64_t)s->n * (q + extra));
    int has = window != Py_None && PyObject_IsTrue(window);
    if (has < 0) return NULL;
    if (!has) return Py_BuildValue("dd", tot, tot);
    int64_t w = PyLong_AsLongLong(window);
    if (w == -1 && PyErr_Occurred()) return NULL;
    int64_t capped = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int64_t c = s->kv[i] + (q + extra);
        capped += c < w ? c : w;
    }
    return Py_BuildValue("dd", tot, (double)capped);
}

static void note_gaps(DS *s, double first_gap, double dt) {
    for (Py_ssize_t i = 0; i < s->n; i++)
        s->maxitl[i] = npmax(s->maxitl[i], npmax(first_gap - s->last[i], dt));
}

static PyObject *DS_advance(DS *s, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "advance(steps, t_end, first_gap, last_dt)"); return NULL; }
    int64_t steps = PyLong_AsLongLong(args[0]);
    double t_end = PyFloat_AsDouble(args[1]), first_gap = PyFloat_AsDouble(args[2]), last_dt = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) return NULL;
    note_gaps(s, first_gap, last_dt);
    for (Py_ssize_t i = 0; i < s->n; i++) { s->kv[i] += steps; s->last[i] = t_end; }
    s->kv_sum += steps * (int64_t)s->n;
    s->left_min -= steps;
    Py_RETURN_NONE;
}

static PyObject *DS_advance_tokens(DS *s, PyObject *args) {
    PyObject *tok;
    double t_end, first_gap, max_dt;
    if (!PyArg_ParseTuple(args, "Oddd", &tok, &t_end, &first_gap, &max_dt)) return NULL;
    Py_buffer v; PyObject *tmp;
    if (view_as(tok, dt_i64, 'i', &v, &tmp) < 0) return NULL;
    if (v.len / 8 != s->n) {
        unview(&v, tmp);
        PyErr_Format(PyExc_ValueError, "tokens of %zd items for a decode set of %zd", v.len / 8, s->n);
        return NULL;
    }
    const int64_t *t = v.buf;
    note_gaps(s, first_gap, max_dt);
    for (Py_ssize_t i = 0; i < s->n; i++) { s->kv[i] += t[i]; s->kv_sum += t[i]; s->last[i] = t_end; }
    unview(&v, tmp);
    int64_t lm = NONE_LEFT;
    for (Py_ssize_t i = 0; i < s->n; i++) if (s->end[i] - s->kv[i] < lm) lm = s->end[i] - s->kv[i];
    s->left_min = lm;
    if (hold_blocks(s, NULL, 0, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---- views of the columns (copies) --------------------------------------------------------------- */
static PyObject *copy_i64(DS *s, const int64_t *a, const int64_t *minus) {
    int64_t *out;
    PyObject *arr = new_array(s->n, dt_i64, (void **)&out);
    if (!arr) return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) out[i] = minus ? a[i] - minus[i] : a[i];
    return arr;
}

static PyObject *copy_f64(DS *s, const double *a) {
    double *out;
    PyObject *arr = new_array(s->n, dt_f64, (void **)&out);
    if (!arr) return NULL;
    if (s->n) memcpy(out, a, s->n * sizeof(double));
    return arr;
}

static PyObject *DS_left(DS *s, PyObject *unused) { return copy_i64(s, s->end, s->kv); }

static PyObject *DS_finished(DS *s, PyObject *unused) {
    char *out;
    PyObject *arr = new_array(s->n, dt_bool, (void **)&out);
    if (!arr) return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) out[i] = s->kv[i] >= s->end[i];
    return arr;
}

static PyObject *get_ids(DS *s, void *c) { return copy_i64(s, s->ids, NULL); }
static PyObject *get_kv(DS *s, void *c) { return copy_i64(s, s->kv, NULL); }
static PyObject *get_off(DS *s, void *c) { return copy_i64(s, s->off, NULL); }
static PyObject *get_end(DS *s, void *c) { return copy_i64(s, s->end, NULL); }
static PyObject *get_held(DS *s, void *c) { return copy_i64(s, s->held, NULL); }
static PyObject *get_last(DS *s, void *c) { return copy_f64(s, s->last); }
static PyObject *get_maxitl(DS *s, void *c) { return copy_f64(s, s->maxitl); }
static PyObject *get_n(DS *s, void *c) { return PyLong_FromSsize_t(s->n); }
static PyObject *get_kv_sum(DS *s, void *c) { return PyLong_FromLongLong(s->kv_sum); }
static PyObject *get_held_sum(DS *s, void *c) { return PyLong_FromLongLong(s->held_sum); }
static PyObject *get_left_min(DS *s, void *c) { return PyLong_FromLongLong(s->left_min); }
static PyObject *get_bs(DS *s, void *c) { return PyLong_FromLongLong(s->bs); }
static PyObject *get_loop(DS *s, void *c) { return PyLong_FromSsize_t(s->loop); }
static PyObject *get_pool(DS *s, void *c) { Py_INCREF(s->pool); return s->pool; }
static PyObject *get_itl(DS *s, void *c) { Py_INCREF(s->itl); return s->itl; }

static Py_ssize_t DS_len(DS *s) { return s->n; }

static PyGetSetDef DS_getset[] = {
    {"ids", (getter)get_ids, NULL, "members' request ids (a copy)", NULL},
    {"kv", (getter)get_kv, NULL, "members' cached tokens (a copy)", NULL},
    {"off", (getter)get_off, NULL, "generated - kv per member (a copy)", NULL},
    {"end", (getter)get_end, NULL, "kv at which each member has its last token (a copy)", NULL},
    {"held", (getter)get_held, NULL, "members' KV blocks (a copy)", NULL},
    {"last", (getter)get_last, NULL, "members' last token times, seconds (a copy)", NULL},
    {"maxitl", (getter)get_maxitl, NULL, "members' longest token gaps, seconds (a copy)", NULL},
    {"n", (getter)get_n, NULL, "members", NULL},
    {"kv_sum", (getter)get_kv_sum, NULL, "cached tokens of all members", NULL},
    {"held_sum", (getter)get_held_sum, NULL, "blocks held by all members", NULL},
    {"left_min", (getter)get_left_min, NULL, "fewest tokens any member has still to generate", NULL},
    {"bs", (getter)get_bs, NULL, "block size, tokens", NULL},
    {"loop", (getter)get_loop, NULL, "the scheduler loop's index in the ITL log", NULL},
    {"pool", (getter)get_pool, NULL, "the replica's block pool", NULL},
    {"itl", (getter)get_itl, NULL, "the ITL log", NULL},
    {NULL}};

static PyMethodDef DS_methods[] = {
    {"add", (PyCFunction)DS_add, METH_O, "Requests that start decoding (their global columns are current)."},
    {"remove", (PyCFunction)DS_remove, METH_O, "Members selected by a mask leave (written back first); their ids."},
    {"remove_finished", (PyCFunction)DS_remove_finished, METH_NOARGS, "Members that have their last token leave; their ids."},
    {"write_back", (PyCFunction)DS_write_back, METH_VARARGS, "Copy members' columns to the global ones; their ids."},
    {"finished", (PyCFunction)DS_finished, METH_NOARGS, "Mask of the members that have generated their last token."},
    {"left", (PyCFunction)DS_left, METH_NOARGS, "Tokens each member has still to generate."},
    {"extra_blocks", (PyCFunction)DS_extra_blocks, METH_O, "Blocks beyond those held that `steps` more steps need."},
    {"reserve", (PyCFunction)DS_reserve, METH_O, "Take the blocks the next `steps` steps need; False if short."},
    {"hold", (PyCFunction)DS_hold, METH_O, "Raise members' blocks to a target; False (nothing taken) if short."},
    {"grow", (PyCFunction)DS_grow, METH_NOARGS, "Take the blocks the current KV lengths need beyond those held."},
    {"ctx_sums", (PyCFunction)DS_ctx_sums, METH_VARARGS, "(sum of KV read, sum capped at the window) of a step `extra` steps ahead."},
    {"advance", (PyCFunction)(void (*)(void))DS_advance, METH_FASTCALL, "`steps` decode steps done, the last at t_end."},
    {"advance_tokens", (PyCFunction)DS_advance_tokens, METH_VARARGS, "Steps done in which member i got tokens[i] tokens."},
    {NULL}};

static PySequenceMethods DS_seq = {.sq_length = (lenfunc)DS_len};

static PyTypeObject DSType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.native._decode_set.DecodeSet",
    .tp_basicsize = sizeof(DS),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The requests one scheduler loop is decoding (compiled; see decode_set.PyDecodeSet).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DS_init,
    .tp_dealloc = (destructor)DS_dealloc,
    .tp_methods = DS_methods,
    .tp_getset = DS_getset,
    .tp_as_sequence = &DS_seq,
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_decode_set",
                                    "The decode set of a scheduler loop, compiled.", -1, NULL};

PyMODINIT_FUNC PyInit__decode_set(void) {
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return NULL;
    np_empty = PyObject_GetAttrString(np, "empty");
    np_ascontig = PyObject_GetAttrString(np, "ascontiguousarray");
    dt_i64 = PyObject_GetAttrString(np, "int64");
    dt_f64 = PyObject_GetAttrString(np, "float64");
    dt_bool = PyObject_GetAttrString(np, "bool_");
    Py_DECREF(np);
    if (!np_empty || !np_ascontig || !dt_i64 || !dt_f64 || !dt_bool) return NULL;
    if (PyType_Ready(&DSType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&DSType);
    if (PyModule_AddObject(m, "DecodeSet", (PyObject *)&DSType) < 0) { Py_DECREF(&DSType); Py_DECREF(m); return NULL; }
    return m;
}
