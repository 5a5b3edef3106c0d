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
        GenericRecord item = wire.newRecord("ConfigValue");
        item.put("type", type);
        item.put("key", key);
        item.put("value", value);
        item.put("if_version", ifVersion < 0 ? null : ifVersion);
        GenericRecord request = request("put", workspace);
        request.put("values", List.of(defaults(item)));
        return call(request, actor);
    }

    int get(String workspace, String type, String key, long minVersion, String actor) throws Exception {
        GenericRecord wanted = wire.newRecord("ConfigKey");
        wanted.put("type", type);
        wanted.put("key", key);
        GenericRecord request = request("get", workspace);
        request.put("keys", List.of(defaults(wanted)));
        request.put("min_version", minVersion < 0 ? null : minVersion);
        return call(request, actor);
    }

    private GenericRecord request(String operation, String workspace) {
        GenericRecord request = defaults(wire.newRecord("ConfigRequest"));
        request.put("operation", operation);
        request.put("workspace", workspace);
        return request;
    }

    /** Fills every field still unset with its schema default (Avro's GenericData.Record starts empty). */
    private static GenericRecord defaults(GenericRecord record) {
        for (var field : record.getSchema().getFields()) {
            if (record.get(field.pos()) == null && field.hasDefaultValue()) {
                record.put(field.pos(), org.apache.avro.generic.GenericData.get().getDefaultValue(field));
            }
        }
        return record;
    }

    /** Sends one request and prints its answer; exit 1 when the answer is an error. */
    private int call(GenericRecord request, String actor) throws Exception {
        String responses = deployment.topic("response");
        try (KafkaConsumer<byte[], byte[]> consumer = deployment.consumer();
             KafkaProducer<byte[], byte[]> producer = deployment.producer()) {
            var partitions = consumer.partitionsFor(responses, Duration.ofSeconds(30));
            if (partitions == null || partitions.isEmpty()) {
                throw new IllegalStateException("topic " + responses + " does not exist");
            }
            // One partition of our own choosing, positioned at its end BEFORE the request goes out:
            // seekToEnd is lazy, position() makes it happen now, so our answer cannot be skipped.
            if (replyPartition >= partitions.size()) {
                throw new IllegalArgumentException(responses + " has no partition " + replyPartition);
            }
            TopicPartition reply = new TopicPartition(responses, replyPartition >= 0 ? (int) replyPartition
                    : ThreadLocalRandom.current().nextInt(partitions.size()));
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
            producer.send(new ProducerRecord<byte[], byte[]>(deployment.topic("request"), null, null, wire.encode(request),
                    headers)).get();

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
