/* journal._fastappend: the lean Python entry point of one append (mmj_append / mmj_append_reserve).
 *
 * cffi's generated wrapper for mmj_append costs about 190 ns around a 30-50 ns append: its
 * API-mode wrappers are METH_VARARGS (a tuple built and unpacked per call), each of the seven
 * arguments is converted through a generic helper, errno is saved and restored, and the GIL is
 * always released and retaken (30-35 ns). An Appender binds the C function and the writer once
 * and is called with the five per-record values through vectorcall (no tuple); it keeps the
 * GIL across the append when the Python side says that is safe (pagecache mode, no Python sync
 * hook: nothing the append can block on then needs the GIL), and releases it otherwise (an msync
 * may take milliseconds). Keeping it, it calls the non-blocking variant (mmj_append_nowait) and,
 * when that could not append without waiting (the writer mutex held by an mmj_sync's fdatasync or
 * a roll, or a roll due), the blocking one with the GIL released: other Python threads never
 * stop behind the writer mutex. It returns exactly what the C function returns (a sequence >= 1 or a
 * negative mmj_status) and leaves typed errors to journal.writer; arguments it does not take as
 * they are (a payload that is not bytes, an integer out of the C parameter's range, a non-int)
 * raise TypeError or OverflowError, on which journal.writer takes its converting path. It knows
 * nothing of records; it never touches a writer after detach().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "journal.h"

#ifndef Py_TPFLAGS_HAVE_VECTORCALL   /* its name before Python 3.12 */
#define Py_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#endif

typedef __typeof__(mmj_append) append_fn;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    append_fn *fn;
    append_fn *try_fn; /* its non-blocking variant (0: would wait), or NULL */
    mmj_writer *w;     /* NULL after detach(): the C function then returns MMJ_E_CLOSED */
    int keep_gil;
} Appender;

/* an int argument within [low, high] of its C parameter, as cffi would accept it */
static int take_int(PyObject *o, long long low, long long high, long long *out)
{
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "an integer is required");
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || v < low || v > high) {
        PyErr_SetString(PyExc_OverflowError, "integer out of range");
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *appender_call(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Appender *self = (Appender *)self_obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 5 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "Appender takes (rtype, payload, ts_ns, ts_source, clock_state)");
        return NULL;
    }
    if (!PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "payload must be bytes");
        return NULL;
    }
    long long rtype, ts, source, state;
    if (take_int(args[0], 0, UINT32_MAX, &rtype) || take_int(args[2], INT64_MIN, INT64_MAX, &ts) ||
        take_int(args[3], 0, UINT32_MAX, &source) || take_int(args[4], 0, UINT32_MAX, &state))
        return NULL;
    const char *payload = PyBytes_AS_STRING(args[1]);
    uint64_t len = (uint64_t)PyBytes_GET_SIZE(args[1]);
    int64_t seq;
    if (self->keep_gil && self->try_fn) {
        seq = self->try_fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
        if (seq == 0) {   /* it would wait: not while holding the GIL */
            Py_BEGIN_ALLOW_THREADS
            seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
            Py_END_ALLOW_THREADS
        }
    } else if (self->keep_gil) {
        seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
    } else {
        Py_BEGIN_ALLOW_THREADS
        seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
        Py_END_ALLOW_THREADS
    }
    return PyLong_FromLongLong(seq);
}

static PyObject *appender_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    unsigned long long fn, w, try_fn = 0;
    int keep_gil;
    if (!PyArg_ParseTuple(args, "KKp|K:Appender", &fn, &w, &keep_gil, &try_fn))
        return NULL;
    if (!fn || !w) {
        PyErr_SetString(PyExc_ValueError, "Appender needs the C function's and the writer's addresses");
        return NULL;
    }
    Appender *self = (Appender *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->vectorcall = appender_call;
    self->fn = (append_fn *)(uintptr_t)fn;
    self->try_fn = (append_fn *)(uintptr_t)try_fn;
    self->w = (mmj_writer *)(uintptr_t)w;
    self->keep_gil = keep_gil;
    return (PyObject *)self;
}

static PyObject *appender_detach(PyObject *self_obj, PyObject *unused)
{
    ((Appender *)self_obj)->w = NULL;
    Py_RETURN_NONE;
}

static PyObject *appender_set_keep_gil(PyObject *self_obj, PyObject *flag)
{
    int keep = PyObject_IsTrue(flag);
    if (keep < 0)
        return NULL;
    ((Appender *)self_obj)->keep_gil = keep;
    Py_RETURN_NONE;
}

static PyObject *appender_get_keep_gil(PyObject *self_obj, void *unused)
{
    return PyBool_FromLong(((Appender *)self_obj)->keep_gil);
}

static PyMethodDef appender_methods[] = {
    {"detach", appender_detach, METH_NOARGS, "Forget the writer: later calls return MMJ_E_CLOSED."},
    {"set_keep_gil", appender_set_keep_gil, METH_O,
     "Keep the GIL across the append (True) or release it (False)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef appender_getset[] = {
    {"keep_gil", appender_get_keep_gil, NULL, "whether the GIL is kept across the append", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AppenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "journal._fastappend.Appender",
    .tp_basicsize = sizeof(Appender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Appender(function address, writer address, keep_gil[, non-blocking variant's address]): call with "
              "(rtype, payload, ts_ns, ts_source, clock_state); returns the C function's result.",
    .tp_new = appender_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Appender, vectorcall),
    .tp_methods = appender_methods,
    .tp_getset = appender_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "journal._fastappend",
    .m_doc = "The lean Python entry point of one journal append.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastappend(void)
{
    if (PyType_Ready(&AppenderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&AppenderType);
    if (PyModule_AddObject(m, "Appender", (PyObject *)&AppenderType) < 0) {
        Py_DECREF(&AppenderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
