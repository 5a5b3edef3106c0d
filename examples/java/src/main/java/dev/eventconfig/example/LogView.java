package dev.eventconfig.example;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/**
 * The log topic folded into a map, as every view does it (docs/design.md §4.4 "Reading the log"):
 * item records are held back until a commit marker arrives, then applied together, so a reader never
 * sees part of a write. Records that are not the contract's are skipped with a warning.
 */
final class LogView {
    /** The item key of §4.2's {@code LogKey}. */
    record Item(String workspace, String type, String key) {
        boolean isMarker() {
            return workspace.isEmpty() && type.isEmpty() && key.isEmpty();
        }
    }

    /** An item's value and the version at which it last changed. */
    record Entry(String value, long version) {
    }

    private final Wire wire;
    private final Map<Item, Entry> items = new HashMap<>();
    /** Items read since the last marker, in order: null is a delete. */
    private final Map<Item, Entry> pending = new LinkedHashMap<>();
    private long version;
    private long skipped;

    LogView(Wire wire) {
        this.wire = wire;
    }

    /** The highest commit-marker version seen: a stray lower marker never moves it back (§6). */
    long version() {
        return version;
    }

    long skipped() {
        return skipped;
    }

    void apply(ConsumerRecord<byte[], byte[]> record) {
        try {
            Item item = item(record.key());
            long at;
            Entry entry = null;
            if (record.value() != null) {
                GenericRecord value = wire.decode("LogEntry", record.value());
                at = (Long) value.get("version");
                entry = new Entry(value.get("value").toString(), at);
            } else {
                at = tombstoneVersion(record);
            }
            if (at < 0) {
                throw new IllegalArgumentException("negative version " + at);
            }
            if (item.isMarker()) {
                pending.forEach((k, e) -> {
                    if (e == null) {
                        items.remove(k);
                    } else {
                        items.put(k, e);
                    }
                });
                pending.clear();
                version = Math.max(version, at);
                return;
            }
            if (item.workspace().isEmpty() || item.type().isEmpty() || item.key().isEmpty()
                    || (item.workspace() + item.type() + item.key()).indexOf('\0') >= 0) {
                throw new IllegalArgumentException("an empty name or a name with NUL (§5.3)");
            }
            pending.put(item, entry);
        } catch (Wire.DecodeException | RuntimeException e) {
            skipped++;
            System.err.println("warning: skipped log record at offset " + record.offset() + ": " + e.getMessage());
        }
    }

    private Item item(byte[] key) throws Wire.DecodeException {
        if (key == null) {
            throw new IllegalArgumentException("a log record without a key");
        }
        GenericRecord logKey = wire.decode("LogKey", key);
        return new Item(logKey.get("workspace").toString(), logKey.get("type").toString(),
                logKey.get("key").toString());
    }

    /** A delete is a null value with the version in its {@code version} header, as decimal text. */
    private static long tombstoneVersion(ConsumerRecord<byte[], byte[]> record) {
        Header header = record.headers().lastHeader("version");
        if (header == null || header.value() == null) {
            throw new IllegalArgumentException("a tombstone without a version header");
        }
        String text = new String(header.value(), StandardCharsets.UTF_8);
        if (!text.matches("[0-9]{1,19}")) {
            throw new IllegalArgumentException("a tombstone with a bad version header " + text);
        }
        return Long.parseLong(text);
    }

    /** {@code {workspace: {type: {key: value}}}} (or {@code {value, version}} per key), sorted by name. */
    Map<String, Map<String, Map<String, Object>>> snapshot(boolean withVersions) {
        Map<String, Map<String, Map<String, Object>>> out = new TreeMap<>();
        items.forEach((item, entry) -> out.computeIfAbsent(item.workspace(), w -> new TreeMap<>())
                .computeIfAbsent(item.type(), t -> new TreeMap<>())
                .put(item.key(), withVersions ? versioned(entry) : entry.value()));
        return out;
    }

    private static Map<String, Object> versioned(Entry entry) {
        Map<String, Object> out = new TreeMap<>();
        out.put("value", entry.value());
        out.put("version", entry.version());
        return out;
    }
}
