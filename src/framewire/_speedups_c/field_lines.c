/* Field lines (RFC 9112 5) in C: parse_field_lines() and encode_fields(), twins of
 * framewire.sansio.field_lines.py_parse_field_lines and http11_encode.py_encode_fields. */

#include "speedups.h"

const char fw_parse_field_lines_doc[] = PyDoc_STR(
"parse_field_lines(buffer, start, end, max_line, max_fields, /)\n"
"--\n"
"\n"
"Parse the CRLF-separated field lines in buffer[start:end] into (fields, index), or return\n"
"None when a line is malformed or over a limit (the caller then parses line by line).");

/* RFC 9110 5.6.2: tchar. */
static unsigned char is_tchar[256];
/* RFC 9110 5.5: field-value characters (HTAB, SP, VCHAR, obs-text). */
static unsigned char is_value_char[256];

void
fw_field_lines_init(void)
{
    for (int c = 0; c < 256; c++) {
        is_tchar[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        is_value_char[c] = c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
    }
}

/* Whether every one of the ``length`` bytes at ``text`` is in ``table``. */
static int
all_in(const unsigned char *table, const unsigned char *text, Py_ssize_t length)
{
    for (Py_ssize_t i = 0; i < length; i++) {
        if (!table[text[i]]) {
            return 0;
        }
    }
    return 1;
}

/* Append one field to fields and index; -1 with an exception set on failure. */
static int
add_field(PyObject *fields, PyObject *index, const unsigned char *name, Py_ssize_t name_length,
          const unsigned char *value, Py_ssize_t value_length)
{
    char lower[256];
    PyObject *name_str = NULL, *value_str = NULL, *pair = NULL, *key = NULL, *values;
    int result = -1;

    name_str = PyUnicode_DecodeASCII((const char *)name, name_length, NULL);
    value_str = PyUnicode_DecodeLatin1((const char *)value, value_length, NULL);
    if (name_str == NULL || value_str == NULL) {
        goto done;
    }
    pair = PyTuple_Pack(2, name_str, value_str);
    if (pair == NULL || PyList_Append(fields, pair) < 0) {
        goto done;
    }
    if (name_length <= (Py_ssize_t)sizeof lower) {
        for (Py_ssize_t i = 0; i < name_length; i++) {
            lower[i] = (char)Py_TOLOWER(name[i]);
        }
        key = PyUnicode_DecodeASCII(lower, name_length, NULL);
    }
    else {
        key = PyObject_CallMethod(name_str, "lower", NULL);
    }
    if (key == NULL) {
        goto done;
    }
    values = PyDict_GetItemWithError(index, key); /* borrowed */
    if (values == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        values = PyList_New(0);
        if (values == NULL) {
            goto done;
        }
        if (PyDict_SetItem(index, key, values) < 0) {
            Py_DECREF(values);
            goto done;
        }
        Py_DECREF(values); /* the dict keeps it */
    }
    result = PyList_Append(values, value_str);
done:
    Py_XDECREF(name_str);
    Py_XDECREF(value_str);
    Py_XDECREF(pair);
    Py_XDECREF(key);
    return result;
}

/* Parse one line; 1 if it was added, 0 if it is not a plain valid field line, -1 on error. */
static int
parse_line(PyObject *fields, PyObject *index, const unsigned char *line, Py_ssize_t length)
{
    Py_ssize_t colon = 0;
    while (colon < length && is_tchar[line[colon]]) {
        colon++;
    }
    if (colon == 0 || colon == length || line[colon] != ':' ||
        !all_in(is_value_char, line + colon + 1, length - colon - 1)) {
        return 0;
    }
    Py_ssize_t first = colon + 1, last = length;
    while (first < last && (line[first] == ' ' || line[first] == '\t')) {
        first++;
    }
    while (last > first && (line[last - 1] == ' ' || line[last - 1] == '\t')) {
        last--;
    }
    if (add_field(fields, index, line, colon, line + first, last - first) < 0) {
        return -1;
    }
    return 1;
}

int
fw_ssize_args(PyObject *const *args, int count, Py_ssize_t *values)
{
    for (int i = 0; i < count; i++) {
        values[i] = PyNumber_AsSsize_t(args[i], PyExc_OverflowError);
        if (values[i] == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

int
fw_parse_fields(const unsigned char *data, Py_ssize_t start, Py_ssize_t end, Py_ssize_t max_line,
                Py_ssize_t max_fields, PyObject **fields_out, PyObject **index_out)
{
    PyObject *fields = PyList_New(0), *index = PyDict_New();
    int result = -1;

    if (fields == NULL || index == NULL) {
        goto done;
    }
    Py_ssize_t position = start, count = 0;
    while (position <= end) {
        const unsigned char *line = data + position;
        Py_ssize_t length = 0;
        /* Lines end at CRLF; a lone CR or LF inside a line makes it invalid below. */
        while (position + length < end &&
               !(line[length] == '\r' && position + length + 1 < end && line[length + 1] == '\n')) {
            length++;
        }
        int parsed = 0;
        if (++count <= max_fields && length <= max_line) {
            parsed = parse_line(fields, index, line, length);
        }
        if (parsed <= 0) {
            result = parsed;
            goto done;
        }
        position += length + 2;
    }
    *fields_out = Py_NewRef(fields);
    *index_out = Py_NewRef(index);
    result = 1;
done:
    Py_XDECREF(fields);
    Py_XDECREF(index);
    return result;
}

PyObject *
fw_parse_field_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t bounds[4]; /* start, end, max_line, max_fields */
    PyObject *fields = NULL, *index = NULL, *result = NULL;

    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "parse_field_lines() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (fw_ssize_args(args + 1, 4, bounds) < 0 ||
        PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t start = bounds[0], end = bounds[1];
    if (start < 0 || end < start || end > view.len) {
        PyErr_SetString(PyExc_ValueError, "parse_field_lines(): start and end out of range");
        goto done;
    }
    int parsed = fw_parse_fields((const unsigned char *)view.buf, start, end, bounds[2], bounds[3],
                                 &fields, &index);
    if (parsed > 0) {
        result = PyTuple_Pack(2, fields, index);
    }
    else if (parsed == 0) {
        result = Py_NewRef(Py_None);
    }
done:
    Py_XDECREF(fields);
    Py_XDECREF(index);
    PyBuffer_Release(&view);
    return result;
}

const char fw_encode_fields_doc[] = PyDoc_STR(
"encode_fields(fields, /)\n"
"--\n"
"\n"
"Return a list or tuple of (name, value) str pairs as 'name: value\\r\\n' lines in bytes, or\n"
"None when fields is of another type or a field is not a valid token name with a valid\n"
"latin-1 value (the caller then encodes in Python, which names the error).");

/* The latin-1 bytes of a str whose characters all fit in one byte, else NULL. */
static const unsigned char *
one_byte_text(PyObject *text, Py_ssize_t *length)
{
    if (!PyUnicode_Check(text) || PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) {
        return NULL;
    }
    *length = PyUnicode_GET_LENGTH(text);
    return PyUnicode_1BYTE_DATA(text);
}

PyObject *
fw_encode_fields(PyObject *module, PyObject *fields)
{
    (void)module;
    if (!PyList_Check(fields) && !PyTuple_Check(fields)) {
        Py_RETURN_NONE;
    }
    /* Two passes: validate and measure, then copy (the items cannot change in between: no
     * Python code runs). */
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fields), total = 0;
    PyObject **items = PySequence_Fast_ITEMS(fields);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = items[i];
        Py_ssize_t name_length = 0, value_length = 0;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_RETURN_NONE;
        }
        const unsigned char *name = one_byte_text(PyTuple_GET_ITEM(pair, 0), &name_length);
        const unsigned char *value = one_byte_text(PyTuple_GET_ITEM(pair, 1), &value_length);
        if (name == NULL || value == NULL || name_length == 0 ||
            !all_in(is_tchar, name, name_length) || !all_in(is_value_char, value, value_length)) {
            Py_RETURN_NONE;
        }
        total += name_length + value_length + 4;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = items[i];
        Py_ssize_t name_length = 0, value_length = 0;
        const unsigned char *name = one_byte_text(PyTuple_GET_ITEM(pair, 0), &name_length);
        const unsigned char *value = one_byte_text(PyTuple_GET_ITEM(pair, 1), &value_length);
        memcpy(out, name, (size_t)name_length);
        out += name_length;
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, value, (size_t)value_length);
        out += value_length;
        *out++ = '\r';
        *out++ = '\n';
    }
    return result;
}
