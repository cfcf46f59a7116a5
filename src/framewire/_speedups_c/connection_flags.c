/* The two fast-path flags of framewire.sansio.connection.Connection, for DirectWriter
 * (frame_now_ok, direct_writer.c) and the Poller (whole_frames_ok, poller.c): each reads one
 * once per message, straight from the instance's slot instead of through its descriptor (about
 * 160 instructions less per message, benchmarks/run.py, 64-byte round trips).
 *
 * C looks nothing up by name and imports nothing: sansio/connection.py hands over the class and
 * the member descriptors of its two slots with use_connection_flags() when it is imported.
 * Until then no object counts as a Connection, so every fast path declines.
 */

#include "speedups.h"

#include <structmember.h>

static PyTypeObject *connection_type = NULL; /* kept for good */
static Py_ssize_t flag_offsets[2];

/* Where ``descriptor``, a slot of ``type`` holding an object, lies in its instances; -1 with an
 * exception set when it is not one. */
static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *descriptor, const char *flag)
{
    if (!Py_IS_TYPE(descriptor, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descriptor)->d_common.d_type != type ||
        ((PyMemberDescrObject *)descriptor)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "use_connection_flags(): %s must be a slot of %.100s",
                     flag, type->tp_name);
        return -1;
    }
    return ((PyMemberDescrObject *)descriptor)->d_member->offset;
}

const char fw_use_connection_flags_doc[] = PyDoc_STR(
"use_connection_flags(connection_type, frame_now_ok, whole_frames_ok, /)\n"
"--\n"
"\n"
"Hand over the Connection class and the slot descriptors of its two fast-path flags;\n"
"DirectWriter.send_message() and the Poller read them from its instances.");

PyObject *
fw_use_connection_flags(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "use_connection_flags() takes 3 positional arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "use_connection_flags(): connection_type must be a class");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    Py_ssize_t frame_now = slot_offset(type, args[1], "frame_now_ok");
    Py_ssize_t whole_frames = frame_now < 0 ? -1 : slot_offset(type, args[2], "whole_frames_ok");
    if (whole_frames < 0) {
        return NULL;
    }
    flag_offsets[FW_FRAME_NOW_OK] = frame_now;
    flag_offsets[FW_WHOLE_FRAMES_OK] = whole_frames;
    Py_XSETREF(connection_type, (PyTypeObject *)Py_NewRef(type));
    Py_RETURN_NONE;
}

int
fw_connection_flag(PyObject *connection, enum fw_connection_flag flag)
{
    if (connection_type == NULL || !PyObject_TypeCheck(connection, connection_type)) {
        return 0;
    }
    return *(PyObject **)((char *)connection + flag_offsets[flag]) == Py_True;
}
