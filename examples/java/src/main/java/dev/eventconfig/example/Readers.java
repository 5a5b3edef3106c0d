package dev.eventconfig.example;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;

import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/** The three readers: the log as a map, the pokes of the notify topic, the history's mutations. */
final class Readers {
    private static final Duration POLL = Duration.ofMillis(200);

    private final Deployment deployment;
    private final Wire wire;
    private final PrintStream out;
    private final long timeoutMs;

    Readers(Deployment deployment, Wire wire, PrintStream out, long timeoutMs) {
        this.deployment = deployment;
        this.wire = wire;
        this.out = out;
        this.timeoutMs = timeoutMs;
    }

    /**
     * Replays the log from its beginning to its end (and on, until it holds {@code minVersion}) and
     * prints {@code {"version": V, "config": {workspace: {type: {key: value}}}}}.
     */
    int state(long minVersion, boolean withVersions) throws TimeoutException {
        LogView view = new LogView(wire);
        try (KafkaConsumer<byte[], byte[]> consumer = deployment.consumer()) {
            TopicPartition tp = Deployment.onlyPartition(consumer, deployment.topic("log"));
            consumer.seekToBeginning(List.of(tp));
            long end = Deployment.end(consumer, tp);
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (consumer.position(tp) < end || view.version() < minVersion) {
                if (System.currentTimeMillis() > deadline) {
                    throw new TimeoutException("the log did not reach version " + minVersion + " within "
                            + timeoutMs + " ms (it is at " + view.version() + ")");
                }
                consumer.poll(POLL).forEach(view::apply);
            }
        }
        Map<String, Object> document = new LinkedHashMap<>();
        document.put("version", view.version());
        document.put("config", view.snapshot(withVersions));
        out.println(Json.write(document));
        return 0;
    }

    /**
     * Follows the notify topic from its end (or its beginning) and prints each poke as
     * {@code {"version", "changes": {type: [workspaces]}, "workspace_changes"}}; stops after
     * {@code count} pokes when it is not negative.
     */
    int pokes(boolean fromBeginning, long count) throws TimeoutException {
        try (KafkaConsumer<byte[], byte[]> consumer = deployment.consumer()) {
            TopicPartition tp = Deployment.onlyPartition(consumer, deployment.topic("notify"));
            if (fromBeginning) {
                consumer.seekToBeginning(List.of(tp));
            } else {
                consumer.seekToEnd(List.of(tp));
            }
            // position() resolves the seek now: a poke sent after this line is printed.
            System.err.println("following " + tp.topic() + " from offset " + consumer.position(tp));
            long printed = 0;
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (count < 0 || printed < count) {
                if (count >= 0 && System.currentTimeMillis() > deadline) {
                    throw new TimeoutException("only " + printed + " of " + count + " pokes within " + timeoutMs + " ms");
                }
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(POLL)) {
                    if (count >= 0 && printed >= count) {
                        break;
                    }
                    try {
                        GenericRecord poke = wire.decode("ConfigPush", record.value());
                        checkVersionHeader(record, (Long) poke.get("version"));
                        out.println(Json.write(Records.plain(poke)));
                        printed++;
                    } catch (Wire.DecodeException | IllegalArgumentException e) {
                        System.err.println("warning: skipped poke at offset " + record.offset() + ": " + e.getMessage());
                    }
                }
            }
        }
        return 0;
    }

    private static void checkVersionHeader(ConsumerRecord<byte[], byte[]> record, long version) {
        Header header = record.headers().lastHeader("version");
        String text = header == null ? null : new String(header.value(), StandardCharsets.UTF_8);
        if (!String.valueOf(version).equals(text)) {
            throw new IllegalArgumentException("version header " + text + " differs from the poke's " + version);
        }
    }

    /**
     * Prints every mutation of the history topic, oldest first, as {@code eventconfig history
     * --format jsonl} does, and checks the hash chain (§14.3): exit 1 when it is broken.
     */
    int history() {
        boolean broken = false;
        String lastHash = null;  // of the record before; the first held record's prev_hash is taken on trust
        try (KafkaConsumer<byte[], byte[]> consumer = deployment.consumer()) {
            TopicPartition tp = Deployment.onlyPartition(consumer, deployment.topic("history"));
            consumer.seekToBeginning(List.of(tp));
            long end = Deployment.end(consumer, tp);
            while (consumer.position(tp) < end) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(POLL)) {
                    GenericRecord mutation;
                    try {
                        mutation = wire.decode("Mutation", record.value());
                    } catch (Wire.DecodeException e) {
                        System.err.println("error: history record at offset " + record.offset() + ": " + e.getMessage());
                        broken = true;
                        continue;
                    }
                    out.println(Json.write(Records.mutation(mutation)));
                    String problem = chainProblem(mutation, lastHash);
                    if (problem != null) {
                        System.err.println("error: version " + mutation.get("version") + ": " + problem);
                        broken = true;
                    }
                    String hash = mutation.get("hash").toString();
                    lastHash = hash.isEmpty() ? lastHash : hash;
                }
            }
        }
        return broken ? 1 : 0;
    }

    private static String chainProblem(GenericRecord mutation, String lastHash) {
        String hash = mutation.get("hash").toString();
        if (hash.isEmpty()) {
            return lastHash == null ? null : "unchained: no hash after the chain began";
        }
        if (!hash.equals(Records.chainHash(mutation))) {
            return "altered: the content does not match its hash";
        }
        if (lastHash != null && !lastHash.equals(mutation.get("prev_hash").toString())) {
            return "dropped: prev_hash is not the hash of the record before";
        }
        return null;
    }
}
