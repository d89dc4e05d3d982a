// expect: 9:60 unknown durationName `fortnight`: second, minute, hour, day, week, month or year
// expect: 10:9 a quiet period of 100000 s is cut to a day (86400 s)
// expect: 11:32 the subdirectory must be a plain string such as 'src'
// Option values Sluice refuses or cuts: an unknown period, a throttle without its map, a
// computed subdirectory, a quiet period past a day.
pipeline {
    agent any
    options {
        rateLimitBuilds(throttle: [count: 1, durationName: 'fortnight'])
        quietPeriod(100000)
        checkoutToSubdirectory("${env.DIR}")
    }
    stages { stage('C') { steps { echo 'c' } } }
}
