package dev.eventconfig.example;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;

import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

/**
 * A request-topic client (docs/design.md §4.3, §5): one {@code ConfigRequest} with the headers
 * {@code id}, {@code actor}, {@code reply-partition} and {@code deadline}, and its answer read from
 * the one response partition it named, with read_committed.
 */
final class Requests {
    private final Deployment deployment;
    private final Wire wire;
    private final PrintStream out;
    private final long timeoutMs;
    private final long replyPartition;

    /** {@code replyPartition}: the response partition to read, or -1 for one picked at random. */
    Requests(Deployment deployment, Wire wire, PrintStream out, long timeoutMs, long replyPartition) {
        this.deployment = deployment;
        this.wire = wire;
        this.out = out;
        this.timeoutMs = timeoutMs;
        this.replyPartition = replyPartition;
    }

    int put(String workspace, String type, String key, String value, String actor, long ifVersion)
            throws Exception {
        GenericRecord item = wire.builder("ConfigValue").set("type", type).set("key", key).set("value", value)
                .set("if_version", ifVersion < 0 ? null : ifVersion).build();
        return call(wire.builder("ConfigRequest").set("operation", "put").set("workspace", workspace)
                .set("values", List.of(item)).build(), actor);
    }

    int get(String workspace, String type, String key, long minVersion, String actor) throws Exception {
        GenericRecord wanted = wire.builder("ConfigKey").set("type", type).set("key", key).build();
        return call(wire.builder("ConfigRequest").set("operation", "get").set("workspace", workspace)
                .set("keys", List.of(wanted)).set("min_version", minVersion < 0 ? null : minVersion).build(), actor);
    }

    /** Sends one request and prints its answer; exit 1 when the answer is an error. */
    private int call(GenericRecord request, String actor) throws Exception {
        String responses = deployment.topic("response");
        try (KafkaConsumer<byte[], byte[]> consumer = deployment.consumer();
             KafkaProducer<byte[], byte[]> producer = deployment.producer()) {
            Deployment.partitions(consumer, deployment.topic("request"));  // must exist: sending would create it
            int partitions = Deployment.partitions(consumer, responses);
            if (replyPartition >= partitions) {
                throw new IllegalArgumentException(responses + " has no partition " + replyPartition);
            }
            // One partition of our own choosing, positioned at its end BEFORE the request goes out:
            // seekToEnd is lazy, position() makes it happen now, so our answer cannot be skipped.
            TopicPartition reply = new TopicPartition(responses, replyPartition >= 0 ? (int) replyPartition
                    : ThreadLocalRandom.current().nextInt(partitions));
            consumer.assign(List.of(reply));
            consumer.seekToEnd(List.of(reply));
            consumer.position(reply);

            String id = UUID.randomUUID().toString();
            long deadline = System.currentTimeMillis() + timeoutMs;
            List<Header> headers = new ArrayList<>();
            headers.add(header("id", id));
            if (actor != null) {
                headers.add(header("actor", actor));
            }
            headers.add(header("reply-partition", Integer.toString(reply.partition())));
            headers.add(header("deadline", Long.toString(deadline)));
            producer.send(new ProducerRecord<byte[], byte[]>(deployment.topic("request"), null, null,
                    wire.encode(request), headers)).get();

            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
                    Header answerId = record.headers().lastHeader("id");
                    if (answerId != null && id.equals(new String(answerId.value(), StandardCharsets.UTF_8))) {
                        System.err.println("request " + id + " answered on " + reply);
                        return print(wire.decode("ConfigResponse", record.value()));
                    }
                    // Another client's answer on the same partition: not ours, passed over.
                }
            }
            throw new TimeoutException("no answer to request " + id + " within " + timeoutMs + " ms");
        }
    }

    private int print(GenericRecord response) {
        out.println(Json.write(Records.plain(response)));
        Object error = response.get("error");
        if (error instanceof GenericRecord e) {
            System.err.println("error: " + e.get("type") + ": " + e.get("message"));
            return 1;
        }
        return 0;
    }

    private static Header header(String name, String value) {
        return new RecordHeader(name, value.getBytes(StandardCharsets.UTF_8));
    }
}
