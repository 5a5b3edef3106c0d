package dev.eventconfig.example;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;

/** Decoded records as plain Java values for printing, and the history's hash chain (§14.3). */
final class Records {
    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private Records() {
    }

    /**
     * An Avro value as maps (record fields in schema order, Avro maps sorted by key), lists, strings,
     * numbers, booleans and null: what {@link Json} prints.
     */
    static Object plain(Object value) {
        if (value instanceof GenericRecord record) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Schema.Field field : record.getSchema().getFields()) {
                out.put(field.name(), plain(record.get(field.pos())));
            }
            return out;
        }
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> out = new TreeMap<>();
            map.forEach((k, v) -> out.put(k.toString(), plain(v)));
            return out;
        }
        if (value instanceof Collection<?> items) {
            List<Object> out = new ArrayList<>();
            items.forEach(item -> out.add(plain(item)));
            return out;
        }
        if (value instanceof CharSequence text) {
            return text.toString();
        }
        return value;  // Long, Integer, Boolean, null
    }

    private static String text(Object value) {
        return value == null ? null : value.toString();
    }

    /** A {@code Mutation} as `eventconfig history --format jsonl` prints it: who, when, what, from what. */
    static Map<String, Object> mutation(GenericRecord m) {
        Map<String, Object> out = new LinkedHashMap<>();
        long timestamp = (Long) m.get("timestamp_ms");
        out.put("version", m.get("version"));
        out.put("time", TIME.format(Instant.ofEpochMilli(timestamp)));
        out.put("timestamp_ms", timestamp);
        out.put("actor", text(m.get("actor")));
        out.put("actor_verified", m.get("actor_verified"));
        out.put("request_id", text(m.get("request_id")));
        out.put("workspace", text(m.get("workspace")));
        out.put("operation", text(m.get("operation")));
        List<Object> changes = new ArrayList<>();
        for (Object c : (Collection<?>) m.get("changes")) {
            GenericRecord change = (GenericRecord) c;
            Map<String, Object> one = new LinkedHashMap<>();
            one.put("type", text(change.get("type")));
            one.put("key", text(change.get("key")));
            one.put("previous", text(change.get("previous")));
            one.put("value", text(change.get("value")));
            changes.add(one);
        }
        out.put("changes", changes);
        return out;
    }

    /**
     * The {@code hash} a {@code Mutation} must carry (§14.3): hex SHA-256 of the compact, ASCII-escaped
     * JSON array {@code [1, version, timestamp_ms, request_id, actor, actor_verified, workspace,
     * operation, [[type, key, value, previous], ...], prev_hash]}.
     */
    static String chainHash(GenericRecord m) {
        List<Object> changes = new ArrayList<>();
        for (Object c : (Collection<?>) m.get("changes")) {
            GenericRecord change = (GenericRecord) c;
            changes.add(java.util.Arrays.asList(text(change.get("type")), text(change.get("key")),
                    text(change.get("value")), text(change.get("previous"))));
        }
        List<Object> fields = java.util.Arrays.asList(1, m.get("version"), m.get("timestamp_ms"),
                text(m.get("request_id")), text(m.get("actor")), m.get("actor_verified"), text(m.get("workspace")),
                text(m.get("operation")), changes, text(m.get("prev_hash")));
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(Json.writeAscii(fields).getBytes(StandardCharsets.US_ASCII));
            return HexFormat.of().formatHex(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
