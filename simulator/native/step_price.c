/* The summed parts of a step whose parts are all memoised, compiled: ``perf.lean.memoised_sums``
 * (the reference; read its docstring). The part keys are built from the step's memo key with the
 * same Python number operations (so equal values of equal types, the same dict slots), looked up in
 * the memo dict, and their seconds, FLOPs and bytes summed from 0.0 in the reference's order, as
 * Python adds floats (IEEE double additions; built with -ffp-contract=off): bit-identical sums.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *k_tokens, *k_seqs, *k_prefill, *k_decode;      /* part kinds */
static PyObject *a_seconds, *a_flops, *a_bytes, *a_kernels;     /* Part fields */
static PyObject *zero, *one, *two;

typedef struct {
    double seconds, flops, bytes;
    PyObject *kernels;   /* a Python int (the reference sums ints) */
} Sums;

/* Add the part under ``key`` (a new reference, consumed) to ``s``: 1 if found, 0 if not in the memo,
 * -1 on error. */
static int add_part(PyObject *memo, PyObject *key, Sums *s) {
    if (!key) return -1;
    PyObject *p = PyDict_GetItemWithError(memo, key);   /* borrowed */
    Py_DECREF(key);
    if (!p) return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(p);
    PyObject *v[4] = {PyObject_GetAttr(p, a_seconds), PyObject_GetAttr(p, a_flops), PyObject_GetAttr(p, a_bytes),
                      PyObject_GetAttr(p, a_kernels)};
    Py_DECREF(p);
    int rc = -1;
    if (v[0] && v[1] && v[2] && v[3]) {
        double x0 = PyFloat_AsDouble(v[0]), x1 = PyFloat_AsDouble(v[1]), x2 = PyFloat_AsDouble(v[2]);
        if (!PyErr_Occurred()) {
            PyObject *k = PyNumber_Add(s->kernels, v[3]);
            if (k) {
                Py_SETREF(s->kernels, k);
                s->seconds += x0;
                s->flops += x1;
                s->bytes += x2;
                rc = 1;
            }
        }
    }
    for (int i = 0; i < 4; i++) Py_XDECREF(v[i]);
    return rc;
}

/* A part key: (kind, *fields, graph) with ``n`` fields (new references, consumed; NULL: error). */
static PyObject *part_key(PyObject *kind, int n, PyObject **fields, PyObject *graph) {
    for (int i = 0; i < n; i++)
        if (!fields[i]) {
            for (int j = 0; j < n; j++) Py_XDECREF(fields[j]);
            return NULL;
        }
    PyObject *key = PyTuple_New(n + 2);
    if (!key) {
        for (int j = 0; j < n; j++) Py_DECREF(fields[j]);
        return NULL;
    }
    Py_INCREF(kind);
    PyTuple_SET_ITEM(key, 0, kind);
    for (int i = 0; i < n; i++) PyTuple_SET_ITEM(key, i + 1, fields[i]);
    Py_INCREF(graph);
    PyTuple_SET_ITEM(key, n + 1, graph);
    return key;
}

/* decode_pairs(seqs, ctx, q) of perf/shape.py, operation by operation. */
static PyObject *decode_pairs(PyObject *seqs, PyObject *ctx, PyObject *q) {
    int q1 = PyObject_RichCompareBool(q, one, Py_EQ);
    if (q1 < 0) return NULL;
    if (q1) { Py_INCREF(ctx); return ctx; }
    PyObject *a = PyNumber_Multiply(seqs, q), *b = a ? PyNumber_Subtract(ctx, a) : NULL;
    PyObject *c = b ? PyNumber_Multiply(q, b) : NULL, *d = c ? PyNumber_Multiply(seqs, q) : NULL;
    PyObject *e = d ? PyNumber_Add(q, one) : NULL, *f = e ? PyNumber_Multiply(d, e) : NULL;
    PyObject *g = f ? PyNumber_TrueDivide(f, two) : NULL, *r = g ? PyNumber_Add(c, g) : NULL;
    Py_XDECREF(a); Py_XDECREF(b); Py_XDECREF(c); Py_XDECREF(d); Py_XDECREF(e); Py_XDECREF(f); Py_XDECREF(g);
    return r;
}

/* The lookups of memoised_parts, summed; 1 with every part found, 0 if one is missing, -1 on error. */
static int sum_parts(PyObject *memo, PyObject *const *k, PyObject *nq, PyObject *tokens, PyObject *graph, Sums *s) {
    PyObject *pt = k[0], *ps = k[1], *n = k[4], *ctx = k[5], *q = k[9];
    PyObject *f[6];
    Py_INCREF(tokens); Py_INCREF(tokens);
    f[0] = tokens; f[1] = tokens;
    int rc = add_part(memo, part_key(k_tokens, 2, f, graph), s);
    if (rc <= 0) return rc;
    PyObject *rows = PyNumber_Add(ps, nq);
    f[0] = rows ? PyNumber_Float(rows) : NULL;
    Py_XDECREF(rows);
    if ((rc = add_part(memo, part_key(k_seqs, 1, f, graph), s)) <= 0) return rc;
    int has = PyObject_IsTrue(ps);
    if (has < 0) return -1;
    if (has) {
        PyObject *pp = PyNumber_Float(k[2]), *pk = PyNumber_Float(k[3]);
        if (!pp || !pk) { Py_XDECREF(pp); Py_XDECREF(pk); return -1; }
        Py_INCREF(pp); Py_INCREF(pk);
        PyObject *g[6] = {PyNumber_Float(pt), PyNumber_Float(ps), pp, pk, pp, pk};
        if ((rc = add_part(memo, part_key(k_prefill, 6, g, Py_False), s)) <= 0) return rc;
    }
    if ((has = PyObject_IsTrue(n)) < 0) return -1;
    if (has) {
        PyObject *raw = decode_pairs(n, ctx, q);
        PyObject *dp = raw ? PyNumber_Float(raw) : NULL, *c = PyNumber_Float(ctx);
        Py_XDECREF(raw);
        if (!dp || !c) { Py_XDECREF(dp); Py_XDECREF(c); return -1; }
        Py_INCREF(dp); Py_INCREF(c);
        PyObject *g[6] = {PyNumber_Float(nq), PyNumber_Float(n), dp, c, dp, c};
        if ((rc = add_part(memo, part_key(k_decode, 6, g, graph), s)) <= 0) return rc;
    }
    return 1;
}

static PyObject *memoised_sums(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "memoised_sums takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *memo = args[0], *key = args[2];
    if (!PyDict_Check(memo)) {
        PyErr_Format(PyExc_TypeError, "memoised_sums: memo must be a dict, not %.100s", Py_TYPE(memo)->tp_name);
        return NULL;
    }
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 10) {
        PyErr_SetString(PyExc_TypeError, "memoised_sums: key must be a tuple of the ten BatchShape fields");
        return NULL;
    }
    int graphs = PyObject_IsTrue(args[1]);
    if (graphs < 0) return NULL;
    PyObject *const *k = &PyTuple_GET_ITEM(key, 0);
    if (k[6] != Py_None || k[7] != Py_None || k[8] != Py_None) Py_RETURN_NONE;
    PyObject *nq = PyNumber_Multiply(k[4], k[9]);
    PyObject *tokens = nq ? PyNumber_Add(k[0], nq) : NULL;
    PyObject *res = NULL;
    if (!tokens) goto done;
    int le = PyObject_RichCompareBool(tokens, zero, Py_LE);
    if (le < 0) goto done;
    if (le) { res = Py_NewRef(Py_None); goto done; }
    int ps0 = PyObject_RichCompareBool(k[1], zero, Py_EQ);
    if (ps0 < 0) goto done;
    PyObject *graph = graphs && ps0 ? Py_True : Py_False;
    Sums s = {0.0, 0.0, 0.0, PyLong_FromLong(0)};
    if (!s.kernels) goto done;
    int rc = sum_parts(memo, k, nq, tokens, graph, &s);
    if (rc > 0)
        res = Py_BuildValue("(dddOO)", s.seconds, s.flops, s.bytes, s.kernels, graph);
    else if (rc == 0)
        res = Py_NewRef(Py_None);
    Py_DECREF(s.kernels);
done:
    Py_XDECREF(nq);
    Py_XDECREF(tokens);
    return res;
}

static PyMethodDef methods[] = {
    {"memoised_sums", (PyCFunction)(void (*)(void))memoised_sums, METH_FASTCALL,
     "memoised_sums(memo, cuda_graphs, key): (GPU seconds, FLOPs, bytes, kernels, graph) of the step with "
     "memo key ``key`` summed over its parts in ``memo`` (a dict), or None if a part is missing or the "
     "step has sliding-window sums."},
    {NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_step_price",
                                    "The summed memoised parts of a step's price, compiled.", -1, methods};

PyMODINIT_FUNC PyInit__step_price(void) {
    if (!(k_tokens = PyUnicode_InternFromString("t")) || !(k_seqs = PyUnicode_InternFromString("s")) ||
        !(k_prefill = PyUnicode_InternFromString("attention_prefill")) ||
        !(k_decode = PyUnicode_InternFromString("attention_decode")) ||
        !(a_seconds = PyUnicode_InternFromString("seconds")) || !(a_flops = PyUnicode_InternFromString("flops")) ||
        !(a_bytes = PyUnicode_InternFromString("bytes")) || !(a_kernels = PyUnicode_InternFromString("kernels")) ||
        !(zero = PyLong_FromLong(0)) || !(one = PyLong_FromLong(1)) || !(two = PyLong_FromLong(2)))
        return NULL;
    return PyModule_Create(&moddef);
}
