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

#include "buffers.h"
#include "decode_set.h"

/* numpy's maximum: a NaN operand is returned (the first if both are). */
static inline double npmax(double a, double b) { return (a != a) ? a : ((b != b) ? b : (a >= b ? a : b)); }

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
void DS_dealloc(DS *s) {
    Py_buffer *bufs[] = {&s->b_kv, &s->b_gen, &s->b_out, &s->b_lt, &s->b_mi, &s->b_held, &s->b_row0, &s->b_last0};
    for (int i = 0; i < s->nbuf; i++) PyBuffer_Release(bufs[i]);
    PyMem_Free(s->ids); PyMem_Free(s->kv); PyMem_Free(s->off); PyMem_Free(s->end); PyMem_Free(s->held);
    PyMem_Free(s->last); PyMem_Free(s->maxitl);
    Py_XDECREF(s->pool); Py_XDECREF(s->itl); Py_XDECREF(s->counts);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

int DS_init(DS *s, PyObject *args, PyObject *kw) {
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
        if (ss_column(cols[i].owner, cols[i].name, cols[i].view, 8, cols[i].readonly) < 0) return -1;
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
PyObject *DS_add(DS *s, PyObject *arg) {
    Py_buffer v; PyObject *tmp;
    if (ss_view_as(arg, ss_dt_i64, 'i', &v, &tmp) < 0) return NULL;
    Py_ssize_t k = v.len / 8;
    const int64_t *ids = v.buf;
    if (reserve_cap(s, s->n + k) < 0) { ss_unview(&v, tmp); return NULL; }
    PyObject *row = PyList_GetItem(s->counts, s->loop);
    int64_t row0 = row ? PyLong_AsLongLong(row) : -1;
    if (PyErr_Occurred()) { ss_unview(&v, tmp); return NULL; }
    int64_t *rkv = I64(s->b_kv), *rgen = I64(s->b_gen), *rout = I64(s->b_out), *pheld = I64(s->b_held);
    double *rlt = F64(s->b_lt), *rmi = F64(s->b_mi);
    Py_ssize_t nreq = s->b_kv.len / 8;
    for (Py_ssize_t j = 0; j < k; j++) {   /* all checked before any is added */
        if (ids[j] < 0 || ids[j] >= nreq) {
            PyErr_Format(PyExc_IndexError, "request %lld out of range", (long long)ids[j]);
            ss_unview(&v, tmp);
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
    ss_unview(&v, tmp);
    Py_RETURN_NONE;
}

/* Members with mask[i] (or all if mask is NULL) write back and leave; returns their ids. */
static PyObject *take_out(DS *s, const char *mask, int leave) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) k += mask ? (mask[i] != 0) : 1;
    int64_t *out;
    PyObject *arr = ss_new_array(k, ss_dt_i64, (void **)&out);
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

/* ``arg`` viewed as one item per member: a bool mask ('?') or int64 values ('i'), named ``what`` in errors. */
static int member_arg(DS *s, PyObject *arg, char kind, const char *what, Py_buffer *v, PyObject **tmp) {
    if (ss_view_as(arg, kind == '?' ? ss_dt_bool : ss_dt_i64, kind, v, tmp) < 0) return -1;
    if (v->len / v->itemsize != s->n) {
        ss_unview(v, *tmp);
        PyErr_Format(PyExc_ValueError, "%s of %zd items for a decode set of %zd", what, v->len / v->itemsize, s->n);
        return -1;
    }
    return 0;
}

/* take_out with the members a boolean array selects. */
static PyObject *take_out_masked(DS *s, PyObject *mask, int leave) {
    Py_buffer v; PyObject *tmp;
    if (member_arg(s, mask, '?', "mask", &v, &tmp) < 0) return NULL;
    PyObject *res = take_out(s, v.buf, leave);
    ss_unview(&v, tmp);
    return res;
}

PyObject *DS_remove(DS *s, PyObject *arg) { return take_out_masked(s, arg, 1); }

PyObject *DS_write_back(DS *s, PyObject *args) {
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

PyObject *DS_remove_finished(DS *s, PyObject *unused) {
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

/* Blocks beyond those held that raising each member to target[i] (or, without a target, to what
 * ``steps`` more steps need) would take. */
static int64_t extra_for(DS *s, const int64_t *target, int64_t steps) {
    int64_t tot = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int64_t b = target ? target[i] : blocks_after(s, i, steps);
        tot += b > s->held[i] ? b : s->held[i];
    }
    return tot - s->held_sum;
}

PyObject *DS_extra_blocks(DS *s, PyObject *arg) {
    int64_t steps = PyLong_AsLongLong(arg);
    if (steps == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(extra_for(s, NULL, steps));
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
    int64_t extra = extra_for(s, target, steps);
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

PyObject *DS_reserve(DS *s, PyObject *arg) {
    int64_t steps = PyLong_AsLongLong(arg);
    if (steps == -1 && PyErr_Occurred()) return NULL;
    int ok = hold_blocks(s, NULL, steps, 1);
    if (ok < 0) return NULL;
    return PyBool_FromLong(ok);
}

PyObject *DS_hold(DS *s, PyObject *arg) {
    Py_buffer v; PyObject *tmp;
    if (member_arg(s, arg, 'i', "target", &v, &tmp) < 0) return NULL;
    int ok = hold_blocks(s, v.buf, 0, 1);
    ss_unview(&v, tmp);
    if (ok < 0) return NULL;
    return PyBool_FromLong(ok);
}

PyObject *DS_grow(DS *s, PyObject *unused) {
    if (hold_blocks(s, NULL, 0, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---- steps ------------------------------------------------------------------------------------ */
PyObject *DS_ctx_sums(DS *s, PyObject *args) {
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

PyObject *DS_advance(DS *s, PyObject *const *args, Py_ssize_t nargs) {
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

PyObject *DS_advance_tokens(DS *s, PyObject *args) {
    PyObject *tok;
    double t_end, first_gap, max_dt;
    if (!PyArg_ParseTuple(args, "Oddd", &tok, &t_end, &first_gap, &max_dt)) return NULL;
    Py_buffer v; PyObject *tmp;
    if (member_arg(s, tok, 'i', "tokens", &v, &tmp) < 0) return NULL;
    const int64_t *t = v.buf;
    note_gaps(s, first_gap, max_dt);
    for (Py_ssize_t i = 0; i < s->n; i++) { s->kv[i] += t[i]; s->kv_sum += t[i]; s->last[i] = t_end; }
    ss_unview(&v, tmp);
    int64_t lm = NONE_LEFT;
    for (Py_ssize_t i = 0; i < s->n; i++) if (s->end[i] - s->kv[i] < lm) lm = s->end[i] - s->kv[i];
    s->left_min = lm;
    if (hold_blocks(s, NULL, 0, 0) < 0) return NULL;
    Py_RETURN_NONE;
}
