package dev.eventconfig.example;

import java.util.Collection;
import java.util.Map;

/**
 * Just enough JSON for this example's output and for the history's hash chain, so the example needs
 * no library beyond Kafka's and Avro's. Maps print in their own iteration order: a TreeMap gives the
 * sorted, comparable form the commands print.
 */
final class Json {
    private Json() {
    }

    /** Compact JSON of strings, numbers, booleans, null, maps (string keys) and collections. */
    static String write(Object value) {
        StringBuilder out = new StringBuilder();
        append(out, value, false);
        return out.toString();
    }

    /**
     * The form docs/design.md §14.3 hashes: compact, and every character outside U+0020..U+007E
     * escaped as a lowercase {@code \\uXXXX} (UTF-16 code units, so a surrogate pair above U+FFFF),
     * except the short escapes of {@code \" \\ \b \f \n \r \t}.
     */
    static String writeAscii(Object value) {
        StringBuilder out = new StringBuilder();
        append(out, value, true);
        return out.toString();
    }

    private static void append(StringBuilder out, Object value, boolean ascii) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof CharSequence text) {
            appendString(out, text.toString(), ascii);
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value);
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                appendString(out, entry.getKey().toString(), ascii);
                out.append(':');
                append(out, entry.getValue(), ascii);
            }
            out.append('}');
        } else if (value instanceof Collection<?> items) {
            out.append('[');
            boolean first = true;
            for (Object item : items) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                append(out, item, ascii);
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("no JSON form for " + value.getClass());
        }
    }

    private static void appendString(StringBuilder out, String text, boolean ascii) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || (ascii && c > 0x7e)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
